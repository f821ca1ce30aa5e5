"""The verdict vocabulary: every diagnosis a scope error can get, what it means, who fixes it, and its thresholds.

One definition used by the live diagnosis, ``report``, ``doctor``, the demo, the alert rules and the docs (tests
check that the README's verdict table and the rules name exactly these). The values are those of the
``openai.scope_error.diagnosis`` span and metric attribute (:mod:`.attributes`): renaming one renames telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# ---- verdicts of one scope error (live in the process, and fleet-wide in ``report`` and the alert rules) ----
#: The client that sent it no longer holds the credentials/organization/project/base URL it was built with.
CLIENT_MUTATED: Final = "client_mutated"
#: The same credential tuple passed this scope (or this endpoint) within the window, and fails now.
SCOPE_FLAPPING: Final = "scope_flapping"
#: The credential tuple never passed this scope within the window and failed at least MIN_FAILURES times.
NEVER_GRANTED: Final = "never_granted"
#: The token's own claims list the scopes it was granted, and the missing scope is not among them.
TOKEN_LACKS_SCOPE: Final = "token_lacks_scope"
#: The same key (fingerprint, host) passed this scope with another organization or project within the window,
#: and fails with this one.
CONTEXT_MISMATCH: Final = "context_mismatch"
#: Not enough evidence yet (the first failures, no history).
UNKNOWN: Final = "unknown"

#: Every verdict emitted today (a verdict joins this tuple, the README table and the alert rules when it is emitted).
ALL: Final = (CLIENT_MUTATED, TOKEN_LACKS_SCOPE, SCOPE_FLAPPING, CONTEXT_MISMATCH, NEVER_GRANTED, UNKNOWN)

#: Failures without any success of the credential tuple before ``never_granted`` is said.
MIN_FAILURES: Final = 3
#: Default look-back, in seconds, for a success of the same credential tuple (``diagnosis_window``).
DEFAULT_WINDOW_SECONDS: Final = 900.0

# Who fixes it: the causes a verdict points at.
PLATFORM: Final = "platform-side"
APP: Final = "your app"
CONFIGURATION: Final = "configuration"
NO_EVIDENCE: Final = "not enough evidence"


@dataclass(frozen=True)
class Meaning:
    """What one verdict tells a user: the cause, a short legend and the first thing to do."""

    verdict: str
    cause: str
    legend: str
    action: str
    colour: str


MEANINGS: Final = {
    m.verdict: m
    for m in (
        Meaning(CLIENT_MUTATED, APP, "your app (mutated client)",
                "look for code that changes api_key/organization/project/base_url on a shared client", "#8e44ad"),
        Meaning(SCOPE_FLAPPING, PLATFORM, "platform-side",
                "keep the request ids for OpenAI support (or wait out a permission change, up to 15-30 min)",
                "#d35400"),
        Meaning(NEVER_GRANTED, CONFIGURATION, "configuration (key or role lacks the scope)",
                "grant the scope to the key, or the project role to the key's owner", "#c0392b"),
        Meaning(TOKEN_LACKS_SCOPE, CONFIGURATION, "configuration (token issued without the scope)",
                "re-authorise, requesting the missing scope", "#e74c3c"),
        Meaning(CONTEXT_MISMATCH, CONFIGURATION, "configuration (wrong organization or project)",
                "send the organization/project in which the key holds the scope", "#b03a2e"),
        Meaning(UNKNOWN, NO_EVIDENCE, "not enough evidence", "wait for more calls", "#7f8c8d"),
    )
}

#: Colour of calls that passed the scope check (report timelines).
OK_COLOUR: Final = "#27ae60"


def meaning(verdict: str) -> Meaning:
    """The meaning of ``verdict``; an unknown value (a file from a newer version) reads as no evidence."""
    return MEANINGS.get(verdict) or Meaning(verdict, NO_EVIDENCE, verdict, "", MEANINGS[UNKNOWN].colour)


# ---- verdicts of one scope family probed by ``doctor`` over its attempts ------------------------------------
PROBE_GRANTED: Final = "granted"
PROBE_MISSING: Final = "missing"
PROBE_FLAPPING: Final = "flapping"
PROBE_INCONCLUSIVE: Final = "inconclusive"
PROBE_NOT_AVAILABLE: Final = "n/a"
PROBE_NOT_PROBED: Final = "not probed"
