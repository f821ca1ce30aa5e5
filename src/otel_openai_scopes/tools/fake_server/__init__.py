"""A fake OpenAI API on 127.0.0.1 for tests, demos and the scope probe.

Realistic JSON bodies and headers (``x-request-id``, ``openai-organization``, ``openai-project``), cursor
pagination on every list, SSE streams (chat, responses, Assistants run events), per-key scope grants enforced
with the package's own scope map, scheduled windows in which a key loses a scope (so an app can be replayed
through an incident), and scripted responses (429s, 403s, HTML and empty bodies) for fault tests. It never needs
the network and never sees a real key.

Credentials: keys, and JWTs whose claims carry an identity and scopes (:mod:`.identity`), with the workload-identity
token exchange of openai 3.x served at ``/oauth/token``.

Modules by job: :mod:`.state` (grants, windows, scripts, counts), :mod:`.routes` (a request to a reply),
:mod:`.bodies` and :mod:`.pages` (JSON bodies, pagination), :mod:`.sse` (streams), :mod:`.control` (the
``/__fake__/`` API), :mod:`.server` (HTTP).
"""

from __future__ import annotations

from .identity import ISSUER, Identity, mint, workload_identity
from .routes import SCOPE_MESSAGE
from .server import FakeOpenAI
from .state import ALL, KeyGrant, ScopeWindow, Scripted

__all__ = ["ALL", "ISSUER", "SCOPE_MESSAGE", "FakeOpenAI", "Identity", "KeyGrant", "ScopeWindow", "Scripted", "mint",
           "workload_identity"]
