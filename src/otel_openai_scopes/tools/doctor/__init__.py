"""``otel-openai-scopes doctor``: probe which scopes a key has, once or repeatedly as a canary.

Each scope family is probed with one request that creates and changes nothing:

* a list endpoint with ``limit=1`` where the family has one (models, assistants, files, batches,
  vector stores, fine-tuning jobs);
* where it has none (threads) or the SDK has no cheap list (responses), a read of an id that cannot
  exist: the server checks scopes before it looks the object up, so ``404`` means *allowed* and a
  ``401 ... Missing scopes`` means *not allowed*;
* ``model.request`` has no request without effects: every call runs a model. It is **not probed**
  unless ``--model-request`` is given; then it sends one free moderation (``POST /moderations``),
  which stores nothing but is a POST that processes the probe text.

Write scopes are never probed (that would need a write). The scopes each request needs come from the scope map.

Across attempts a family is ``granted``, ``missing``, ``flapping`` (both ok and missing), ``inconclusive``
(errors only), ``n/a`` (the installed SDK lacks the call) or ``not probed`` (opt-in not given). Exit codes
(:mod:`..exit_codes`, most urgent first): 3 flapping, 1 missing, 4 inconclusive, 5 key rejected
(``invalid_api_key`` on every answer), 6 unreachable, 2 usage, 0 every probed family granted.

The key comes from an environment variable or stdin, never argv, and is never printed: only its hint and
fingerprint. Untrusted text is printed cleaned (:func:`..terminal.clean`), URLs as spans show them.

Modules by job: :mod:`.probes` (the table, from the scope map; sending), :mod:`.verdicts` (judging, exit code),
:mod:`.inputs` (key, options), :mod:`.credential` (a token read locally), :mod:`.run` (the command),
:mod:`.render` (the terminal); URLs are shown by :mod:`..urls`.
"""

from __future__ import annotations

from ..urls import ShownUrl, display_url
from .inputs import UsageError, check_base_url, read_key
from .probes import PROBES, Planned, Probe, call_kwargs, plan, resolve_call
from .run import run_doctor
from .verdicts import (
    ERROR,
    MISSING,
    NA,
    OK,
    SKIPPED,
    FamilyState,
    Judgement,
    common_cause,
    exit_code,
    family_verdict,
    flapping,
    judge,
    judge_failure,
)

__all__ = [
    "ERROR", "MISSING", "NA", "OK", "PROBES", "SKIPPED", "FamilyState", "Judgement", "Planned", "Probe", "ShownUrl",
    "UsageError", "call_kwargs", "check_base_url", "common_cause", "display_url", "exit_code", "family_verdict",
    "flapping", "judge", "judge_failure", "plan", "read_key", "resolve_call", "run_doctor",
]
