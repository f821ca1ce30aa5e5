"""Judging: one answer -> an outcome; one family's outcomes over the attempts -> a verdict; all -> the exit code.

Outcome of one attempt: ``ok`` (2xx, or 404 on a read of a non-existent id), ``missing`` (401/403 whose body names
missing scopes), ``error`` (anything else: other statuses, connection errors; not a scope verdict), ``n/a`` (the
installed SDK lacks the call). A family's verdict names come from :mod:`otel_openai_scopes.verdicts` (``PROBE_*``)
and the exit codes from :mod:`..exit_codes`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ... import verdicts as V
from ...redact import safe_message
from ...scope_errors import parse_error
from .. import exit_codes as X

if TYPE_CHECKING:
    from .probes import Planned

OK = "ok"
MISSING = "missing"
ERROR = "error"
NA = "n/a"
SKIPPED = "skipped"

# Why an ERROR outcome gave no verdict, when every answer says the same (one verdict line, exit 5 or 6).
REJECTED = "rejected"
UNREACHABLE = "unreachable"

MAX_HISTORY = 60  # outcomes per family shown in the matrix (the counts cover every attempt)
MAX_REQUEST_IDS = 3
MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Judgement:
    outcome: str  # OK, MISSING, ERROR, NA or SKIPPED
    status: int = 0  # HTTP status, 0 when there was no response
    missing_scopes: tuple[str, ...] = ()
    detail: str = ""
    cause: str = ""  # REJECTED, UNREACHABLE or "" (ERROR outcomes only)


def _bounded(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(status: int, body: Any = None, absent_id: bool = False, *secrets: str | None) -> Judgement:
    """An HTTP answer to one probe -> ok / missing / error. ``body`` is the error body (any shape)."""
    if 200 <= status < 300:
        return Judgement(OK, status)
    if status == 404 and absent_id:
        return Judgement(OK, status, detail="404 for an id that does not exist: allowed")
    info = parse_error(status, body, *secrets) if status >= 400 else None
    if info is not None and status in (401, 403) and info.missing_scopes:
        return Judgement(MISSING, status, info.missing_scopes, info.message)
    text = f"HTTP {status}" if status else "no response"
    if info is not None and info.code:
        text += f" {info.code}"
    if info is not None and info.message:
        text += f" - {info.message}"
    cause = REJECTED if info is not None and status in (401, 403) and info.code == "invalid_api_key" else ""
    # parse_error masked code and message already: masking the joined text again would mask its words
    return Judgement(ERROR, status, (), _bounded(text, MAX_DETAIL_CHARS), cause)


def judge_failure(exc: BaseException, absent_id: bool = False, *secrets: str | None) -> Judgement:
    """An exception raised by the SDK call -> a judgement (status errors are judged by their response)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status:
        return judge(status, getattr(exc, "body", None), absent_id, *secrets)
    name = type(exc).__name__
    cause = UNREACHABLE if "Connection" in name or "Timeout" in name or isinstance(exc, OSError) else ""
    return Judgement(ERROR, 0, (), safe_message(f"{name}: {exc}", *secrets, limit=MAX_DETAIL_CHARS), cause)


def family_verdict(counts: Mapping[str, int]) -> str:
    """Outcome counts of one family over the attempts -> its verdict (flapping = ok and missing both seen)."""
    ok, missing = counts.get(OK, 0), counts.get(MISSING, 0)
    if ok and missing:
        return V.PROBE_FLAPPING
    if missing:
        return V.PROBE_MISSING
    if ok:
        return V.PROBE_GRANTED
    if counts.get(ERROR, 0):
        return V.PROBE_INCONCLUSIVE
    if counts.get(NA, 0):
        return V.PROBE_NOT_AVAILABLE
    return V.PROBE_NOT_PROBED


def flapping(history: Mapping[str, Iterable[str]]) -> list[str]:
    """Families whose outcomes include both ok and missing, in the given order."""
    return [family for family, outcomes in history.items()
            if family_verdict(Counter(outcomes)) == V.PROBE_FLAPPING]


@dataclass
class FamilyState:
    """One family over a run: its planned probe, the SDK call used, and the tally of outcomes."""

    planned: Planned
    enabled: bool = True  # False: opt-in probe not asked for
    call_name: str = ""  # the SDK call used, "" when the installed SDK has none (n/a)
    call: Any = None
    counts: Counter[str] = field(default_factory=Counter)
    history: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    missing_scopes: Counter[str] = field(default_factory=Counter)
    last_error: str = ""
    causes: Counter[str] = field(default_factory=Counter)  # ERROR outcomes by cause
    diagnosis: str = ""
    request_ids: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_REQUEST_IDS))

    @property
    def family(self) -> str:
        return self.planned.probe.family

    @property
    def verdict(self) -> str:
        return family_verdict(self.counts)

    def add(self, j: Judgement, diagnosis: str = "", request_id: str = "") -> None:
        self.counts[j.outcome] += 1
        self.history.append(j.outcome)
        if j.outcome == MISSING:
            self.missing_scopes.update(j.missing_scopes)
            if diagnosis:
                self.diagnosis = diagnosis
            if request_id:
                self.request_ids.append(request_id)
        elif j.outcome == ERROR:
            self.last_error = j.detail
            self.causes[j.cause] += 1


def common_cause(states: Sequence[FamilyState]) -> str:
    """REJECTED or UNREACHABLE when every probe that was sent failed for that one reason, else ""."""
    sent = [st for st in states if st.enabled and st.call is not None and any(st.counts.values())]
    if not sent or any(st.counts[OK] or st.counts[MISSING] for st in sent):
        return ""
    causes = {cause for st in sent for cause in st.causes}
    return causes.pop() if len(causes) == 1 and causes <= {REJECTED, UNREACHABLE} else ""


def exit_code(verdicts: Iterable[str], common: str = "") -> int:
    """Family verdicts -> the exit code (flapping > missing > inconclusive > ok); an inconclusive run whose every
    answer said the same (``common``: key rejected, server unreachable) says that instead."""
    verdicts = list(verdicts)
    if V.PROBE_FLAPPING in verdicts:
        return X.FLAPPING
    if V.PROBE_MISSING in verdicts:
        return X.FOUND
    if V.PROBE_INCONCLUSIVE in verdicts or V.PROBE_GRANTED not in verdicts:
        return {REJECTED: X.KEY_REJECTED, UNREACHABLE: X.UNREACHABLE}.get(common, X.INCONCLUSIVE)
    return X.OK


def exit_meaning(code: int) -> str:
    return X.TABLE["doctor"].get(code, "")
