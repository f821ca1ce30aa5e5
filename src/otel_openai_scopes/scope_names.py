"""The scope grammar: what a scope name looks like, and how long a list of them may be.

Apart from :mod:`.scope_errors` because a token's grant (:mod:`.tokens`) is read with the same grammar, and
the error parser depends on the masking, which depends on the fingerprint, which depends on the token: the
grammar sits below them all.
"""

from __future__ import annotations

import re
from typing import Final

MAX_SCOPES: Final = 16
MAX_SCOPE_CHARS: Final = 64
MAX_SCOPE_PARTS: Final = 6

# Scope names as OpenAI writes them: lowercase dotted names (``api.threads.read``, ``model.request``,
# ``vector_store.write``). Anything else in a list (words, a quoted key) is not a scope.
SCOPE: Final = re.compile(rf"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){{1,{MAX_SCOPE_PARTS - 1}}}")


def is_scope_name(token: str) -> bool:
    """Whether ``token`` is a scope name by the strict grammar (bounded in length and parts)."""
    return len(token) <= MAX_SCOPE_CHARS and SCOPE.fullmatch(token) is not None
