"""Every exit code of every command, in one table (the README's table is checked against it).

Automation reads these: a code never changes meaning, and a crash is never reported as one of the
"found something" codes (an unexpected error is ``USAGE`` with one line on stderr, never a traceback).
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
#: ``report``: scope errors found; ``doctor``: a scope missing on every attempt with a verdict.
FOUND: Final = 1
#: A usage error (bad option, missing or unwritable path, no key, a key on the command line), or for ``report``
#: nothing readable.
USAGE: Final = 2
#: ``doctor``: some scope family flapped (allowed on some attempts, missing on others).
FLAPPING: Final = 3
#: ``doctor``: nothing missing, but some probed family never got a verdict.
INCONCLUSIVE: Final = 4
#: ``doctor``: every answer was ``401 invalid_api_key``.
KEY_REJECTED: Final = 5
#: ``doctor``: no request got an answer (connection errors, timeouts).
UNREACHABLE: Final = 6

#: command -> exit code -> meaning.
TABLE: Final[dict[str, dict[int, str]]] = {
    "demo": {OK: "done", USAGE: "usage"},
    "report": {OK: "no scope error found", FOUND: "scope errors found",
               USAGE: "nothing readable (the reason is printed) or usage"},
    "doctor": {OK: "all granted", FOUND: "missing", USAGE: "usage (no key, malformed base URL, bad option)",
               FLAPPING: "flapping", INCONCLUSIVE: "inconclusive", KEY_REJECTED: "key rejected (invalid_api_key on "
               "every probe)", UNREACHABLE: "server unreachable"},
    "fingerprint": {OK: "printed", USAGE: "usage"},
    "fake-server": {USAGE: "port in use or out of range"},
}
