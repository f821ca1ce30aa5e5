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

Write scopes are never probed (that would need a write).

Judgement of one attempt (:func:`judge`): ``ok`` (2xx, or 404 on a read of a non-existent id),
``missing`` (401/403 whose body names missing scopes), ``error`` (anything else: other statuses,
connection errors; not a scope verdict). Across attempts a family is ``granted``, ``missing``,
``flapping`` (both ok and missing), ``inconclusive`` (errors only), ``n/a`` (the installed SDK lacks
the call) or ``not probed`` (opt-in not given).

Exit codes (:func:`exit_code`), most urgent first when several apply:

* 3 (:data:`EXIT_FLAPPING`): some family flapped: ok on some attempts, missing on others;
* 1 (:data:`EXIT_MISSING`): some family was missing on every attempt that got a verdict;
* 4 (:data:`EXIT_INCONCLUSIVE`): nothing missing, but some probed family never got a verdict;
* 5 (:data:`EXIT_KEY_REJECTED`): no verdict, because every answer was ``401 invalid_api_key``;
* 6 (:data:`EXIT_UNREACHABLE`): no verdict, because no request got an answer (connection errors, timeouts);
* 2 (:data:`EXIT_USAGE`): usage error (no key, a key-like ``--key-env``, a malformed base URL, bad options);
* 0 (:data:`EXIT_OK`): every probed family was granted on every attempt with a verdict.

The key comes from an environment variable or stdin, never argv, and is never printed: only its
hint and fingerprint (:func:`otel_openai_scopes.fingerprint.describe`). The probe runs under
:class:`~otel_openai_scopes.instrumentor.OpenAIScopesInstrumentor`, so it emits exactly the
instrumentation's spans and metrics (``--out`` file, OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set).
"""

from __future__ import annotations

import inspect
import re
import sys
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import urlsplit, urlunsplit

from .. import attributes as A
from ..redact import safe_message
from ..scope_errors import parse_error
from .terminal import widen_when_piped

# ---- outcomes, verdicts, exit codes ------------------------------------------------------------
OK = "ok"
MISSING = "missing"
ERROR = "error"
NA = "n/a"
SKIPPED = "skipped"

GRANTED = "granted"
MISSING_VERDICT = "missing"
FLAPPING = "flapping"
INCONCLUSIVE = "inconclusive"
NOT_AVAILABLE = "n/a"
NOT_PROBED = "not probed"

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_USAGE = 2
EXIT_FLAPPING = 3
EXIT_INCONCLUSIVE = 4
EXIT_KEY_REJECTED = 5
EXIT_UNREACHABLE = 6
EXIT_MEANING = {
    EXIT_OK: "every probed scope granted",
    EXIT_MISSING: "scope missing",
    EXIT_USAGE: "usage error",
    EXIT_FLAPPING: "scope flapping",
    EXIT_INCONCLUSIVE: "inconclusive (errors, no scope verdict)",
    EXIT_KEY_REJECTED: "key rejected (invalid_api_key)",
    EXIT_UNREACHABLE: "server unreachable",
}
# Why an ERROR outcome gave no verdict, when every answer says the same (one verdict line, exit 5 or 6).
REJECTED = "rejected"
UNREACHABLE = "unreachable"

SYMBOL = {OK: "+", MISSING: "X", ERROR: "!", NA: "-", SKIPPED: "-"}
STYLE = {OK: "green", MISSING: "bold red", ERROR: "yellow", NA: "dim", SKIPPED: "dim"}
VERDICT_STYLE = {GRANTED: "green", MISSING_VERDICT: "bold red", FLAPPING: "bold magenta",
                 INCONCLUSIVE: "yellow", NOT_AVAILABLE: "dim", NOT_PROBED: "dim"}

ABSENT_THREAD_ID = "thread_nonexistent_otel_doctor"
ABSENT_RESPONSE_ID = "resp_nonexistent_otel_doctor"
MODERATION_INPUT = "otel-openai-scopes doctor probe"
MAX_HISTORY = 60  # outcomes per family shown in the matrix (the counts cover every attempt)
MAX_REQUEST_IDS = 3


# ---- the probe table -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """One scope family and the one harmless request that tells whether the key has it."""

    family: str
    scopes: tuple[str, ...]  # as in data/scope_map.tsv for method + path (a test keeps them equal)
    method: str
    path: str  # relative to the base URL, as sent
    calls: tuple[str, ...]  # SDK attribute paths on the client, newest SDK first; the first present is used
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()  # passed only when the installed SDK's method accepts them
    absent_id: bool = False  # reads an id that cannot exist: 404 means the scope is allowed
    opt_in: bool = False  # sent only with --model-request
    note: str = ""


PROBES: tuple[Probe, ...] = (
    Probe("models", ("api.model.read", "model.read"), "GET", "/models", ("models.list",),
          note="list models"),
    Probe("assistants", ("api.assistants.read",), "GET", "/assistants", ("beta.assistants.list",),
          kwargs=(("limit", 1),), note="list, limit=1"),
    Probe("threads", ("api.threads.read",), "GET", f"/threads/{ABSENT_THREAD_ID}", ("beta.threads.retrieve",),
          args=(ABSENT_THREAD_ID,), absent_id=True, note="no list endpoint: read a thread that does not exist"),
    Probe("responses", ("api.responses.read",), "GET", f"/responses/{ABSENT_RESPONSE_ID}", ("responses.retrieve",),
          args=(ABSENT_RESPONSE_ID,), absent_id=True, note="read a response that does not exist"),
    Probe("files", ("api.files.read",), "GET", "/files", ("files.list",), kwargs=(("limit", 1),),
          note="list, limit=1 where the SDK has it"),
    Probe("batches", ("api.batch.read",), "GET", "/batches", ("batches.list",), kwargs=(("limit", 1),),
          note="list, limit=1"),
    Probe("vector_stores", ("vector_store.read",), "GET", "/vector_stores",
          ("vector_stores.list", "beta.vector_stores.list"), kwargs=(("limit", 1),),
          note="list, limit=1 (scope string low confidence)"),
    Probe("fine_tuning", ("api.fine_tuning.jobs.read",), "GET", "/fine_tuning/jobs", ("fine_tuning.jobs.list",),
          kwargs=(("limit", 1),), note="list, limit=1"),
    Probe("model_request", ("model.request", "api.model.request"), "POST", "/moderations", ("moderations.create",),
          kwargs=(("input", MODERATION_INPUT),), opt_in=True,
          note="opt-in (--model-request): one free moderation, stores nothing"),
)


# ---- judging one attempt -------------------------------------------------------------------------
@dataclass(frozen=True)
class Judgement:
    outcome: str  # OK, MISSING, ERROR, NA or SKIPPED
    status: int = 0  # HTTP status, 0 when there was no response
    missing_scopes: tuple[str, ...] = ()
    detail: str = ""
    cause: str = ""  # REJECTED, UNREACHABLE or "" (ERROR outcomes only)


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
    return Judgement(ERROR, status, (), _bounded(text, 200), cause)


def _bounded(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge_failure(exc: BaseException, absent_id: bool = False, *secrets: str | None) -> Judgement:
    """An exception raised by the SDK call -> a judgement (status errors are judged by their response)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status:
        return judge(status, getattr(exc, "body", None), absent_id, *secrets)
    name = type(exc).__name__
    cause = UNREACHABLE if "Connection" in name or "Timeout" in name or isinstance(exc, OSError) else ""
    return Judgement(ERROR, 0, (), safe_message(f"{name}: {exc}", *secrets, limit=200), cause)


# ---- across attempts -------------------------------------------------------------------------------
def family_verdict(counts: Mapping[str, int]) -> str:
    """Outcome counts of one family over the attempts -> its verdict (flapping = ok and missing both seen)."""
    ok, missing = counts.get(OK, 0), counts.get(MISSING, 0)
    if ok and missing:
        return FLAPPING
    if missing:
        return MISSING_VERDICT
    if ok:
        return GRANTED
    if counts.get(ERROR, 0):
        return INCONCLUSIVE
    if counts.get(NA, 0):
        return NOT_AVAILABLE
    return NOT_PROBED


def flapping(history: Mapping[str, Iterable[str]]) -> list[str]:
    """Families whose outcomes include both ok and missing, in the given order."""
    return [family for family, outcomes in history.items() if family_verdict(Counter(outcomes)) == FLAPPING]


def common_cause(states: Sequence[FamilyState]) -> str:
    """REJECTED or UNREACHABLE when every probe that was sent failed for that one reason, else ""."""
    sent = [st for st in states if st.enabled and st.call is not None and any(st.counts.values())]
    if not sent or any(st.counts[OK] or st.counts[MISSING] for st in sent):
        return ""
    causes = {cause for st in sent for cause in st.causes}
    return causes.pop() if len(causes) == 1 and causes <= {REJECTED, UNREACHABLE} else ""


def exit_code(verdicts: Iterable[str]) -> int:
    """Family verdicts -> the process exit code (flapping > missing > inconclusive > ok)."""
    verdicts = list(verdicts)
    if FLAPPING in verdicts:
        return EXIT_FLAPPING
    if MISSING_VERDICT in verdicts:
        return EXIT_MISSING
    if INCONCLUSIVE in verdicts or GRANTED not in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


# ---- key, options ----------------------------------------------------------------------------------
class UsageError(Exception):
    """Bad invocation: exit 2 with this message (which never contains the key)."""


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_key(key_env: str, use_stdin: bool, environ: Mapping[str, str], stdin: TextIO | None = None) -> str:
    """The key from ``environ[key_env]`` or the first line of stdin. Never echoes what it read."""
    if not _ENV_NAME.match(key_env or ""):
        raise UsageError("--key-env takes the NAME of an environment variable (letters, digits, underscores), "
                         "not a key: never put a key on the command line.")
    if use_stdin:
        key = (stdin or sys.stdin).readline().strip()
        if not key:
            raise UsageError("no key: --stdin was given but standard input was empty.")
        return key
    key = (environ.get(key_env) or "").strip()
    if not key:
        raise UsageError(f"no key: set {key_env} (or name another variable with --key-env NAME), or pipe the key "
                         "with --stdin. The key is never read from the command line.")
    return key


def call_kwargs(fn: Callable[..., Any], wanted: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The keyword arguments among ``wanted`` that ``fn`` accepts (``limit`` is missing in some SDKs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(wanted)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted if k in params}


def resolve_call(client: Any, probe: Probe) -> tuple[str, Callable[..., Any]] | None:
    """The first of the probe's SDK calls that the installed SDK has, or None (-> n/a)."""
    for dotted in probe.calls:
        obj = client
        try:
            for part in dotted.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if callable(obj):
            return dotted, obj
    return None


def display_url(url: str) -> str:
    """A base URL without any user:password part, query or fragment (they may carry credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(malformed URL, not shown)"
    if parts.username or parts.password:
        host = parts.hostname or ""
        parts = parts._replace(netloc=host + (f":{port}" if port else ""))
    return urlunsplit(parts._replace(query="", fragment=""))


def check_base_url(url: str) -> None:
    """Raise UsageError unless ``url`` is an http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise UsageError("the base URL is malformed (not shown: it may hold credentials): use "
                         "http(s)://HOST[:PORT]/v1 (from --base-url or OPENAI_BASE_URL).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the base URL ({display_url(url)}) is not an http(s) URL with a host: use "
                         "http(s)://HOST[:PORT]/v1 (from --base-url or OPENAI_BASE_URL).")


# ---- state of a run ------------------------------------------------------------------------------------
@dataclass
class FamilyState:
    probe: Probe
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


def _span_facts(telemetry: Any) -> tuple[str, str]:
    """Diagnosis and request id the instrumentation put on the probe's span; clears the in-memory copy."""
    diagnosis = request_id = ""
    try:
        for span in reversed(telemetry.spans.get_finished_spans()):
            attrs = span.attributes or {}
            if A.TEMPLATE in attrs:
                diagnosis = str(attrs.get(A.DIAGNOSIS, "") or "")
                request_id = str(attrs.get(A.REQUEST_ID, "") or "")
                break
        telemetry.spans.clear()  # bounded memory in canary mode
    except Exception:  # noqa: BLE001 - the summary must not break the probe
        pass
    return diagnosis, request_id


def run_probe(call: Callable[..., Any], probe: Probe, key: str) -> Judgement:
    """Send one probe through the (instrumented) SDK and judge the answer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # beta.threads is deprecated in 3.x
            call(*probe.args, **call_kwargs(call, probe.kwargs))
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash of the canary
        return judge_failure(exc, probe.absent_id, key)
    return Judgement(OK, 200)


# ---- rendering -----------------------------------------------------------------------------------------
def _outcome_text(outcomes: Iterable[str]) -> Any:
    from rich.text import Text

    text = Text()
    for o in outcomes:
        text.append(SYMBOL.get(o, "?"), style=STYLE.get(o, ""))
    return text


def _notes(state: FamilyState, attempts: int) -> str:
    v = state.verdict
    c = state.counts
    if v in (MISSING_VERDICT, FLAPPING):
        scopes = ", ".join(s for s, _ in state.missing_scopes.most_common())
        text = f"missing {scopes} {c[MISSING]}/{attempts}"
        if state.diagnosis:
            text += f", diagnosis {state.diagnosis}"
        if c[ERROR]:
            text += f"; {c[ERROR]} errors"
        return text
    if v == NOT_AVAILABLE:
        return f"the installed openai SDK has no {' / '.join(state.probe.calls)}"
    if v == NOT_PROBED:
        return "opt-in: --model-request" if state.probe.opt_in else ""
    if c[ERROR]:
        return f"{c[ERROR]}/{attempts} errors, last: {state.last_error}"
    return state.call_name


def render_matrix(console: Any, states: Sequence[FamilyState], attempts: int) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Scope probe: family x attempt", show_lines=False)
    table.add_column("family", no_wrap=True)
    table.add_column("scopes")
    table.add_column("request", no_wrap=True)
    shown = min(attempts, MAX_HISTORY)
    table.add_column(f"attempts 1..{attempts}" if shown == attempts else f"last {shown} of {attempts} attempts",
                     no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("notes")
    for st in states:
        p = st.probe
        outcomes = list(st.history) or [SKIPPED] * shown
        verdict = st.verdict
        table.add_row(Text(p.family), Text(", ".join(p.scopes)), Text(f"{p.method} {p.path}"), _outcome_text(outcomes),
                      Text(verdict.upper() if verdict in (MISSING_VERDICT, FLAPPING) else verdict,
                           style=VERDICT_STYLE.get(verdict, "")),
                      Text(_notes(st, attempts)))
    console.print(table)
    console.print("+ allowed (2xx, or 404 for an id that does not exist)  X missing scope (401/403 naming it)  "
                  "! other error, no scope verdict  - not probed", highlight=False)


def _ids(st: FamilyState) -> str:
    return f" (request ids {', '.join(st.request_ids)})" if st.request_ids else ""


def _summary_lines(states: Sequence[FamilyState], attempts: int) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for st in states:
        v, c = st.verdict, st.counts
        scopes = ", ".join(s for s, _ in st.missing_scopes.most_common())
        if v == FLAPPING:
            lines.append(("bold magenta", f"FLAPPING {st.probe.family}: {scopes} missing on {c[MISSING]} and allowed on"
                                          " "
                                          f"{c[OK]} of {attempts} attempts with the same key: the key's scopes flap "
                                          "(platform-side, or a role/key change still propagating). Keep the request "
                                          "ids for OpenAI support" + _ids(st) + "."))
        elif v == MISSING_VERDICT:
            lines.append(("bold red", f"MISSING {st.probe.family}: {scopes} on every attempt with a verdict "
                                      f"({c[MISSING]}): a restricted key without this permission, or the key "
                                      "owner's project role lacks it" + _ids(st) + "."))
        elif v == INCONCLUSIVE:
            lines.append(("yellow", f"INCONCLUSIVE {st.probe.family}: no attempt got a scope verdict; last error: "
                                    f"{st.last_error}"))
    return lines


# ---- the command -------------------------------------------------------------------------------------------
def run_doctor(
    key_env: str = "OPENAI_API_KEY",
    use_stdin: bool = False,
    base_url: str | None = None,
    organization: str | None = None,
    project: str | None = None,
    repeat: int = 1,
    interval: float = 10.0,
    out: str | Path | None = None,
    model_request: bool = False,
    timeout: float = 15.0,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    console: Any = None,
    err_console: Any = None,
) -> int:
    """Probe, print the matrix, return the exit code. ``repeat=0`` probes until interrupted."""
    import os

    from rich.console import Console
    from rich.markup import escape

    console = widen_when_piped(console)
    err_console = err_console or Console(stderr=True)
    environ = os.environ if environ is None else environ
    try:
        if repeat < 0:
            raise UsageError("--repeat must be >= 0 (0: until interrupted).")
        if interval < 0 or timeout <= 0:
            raise UsageError("--interval must be >= 0 and --timeout > 0.")
        key = read_key(key_env, use_stdin, environ, stdin)
        url = base_url or environ.get("OPENAI_BASE_URL") or ""
        if url:
            check_base_url(url)
    except UsageError as exc:
        err_console.print(f"doctor: {exc}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_USAGE

    import openai

    from ..config import Settings
    from ..fingerprint import describe
    from ..instrumentor import OpenAIScopesInstrumentor
    from .telemetry_setup import setup_telemetry

    settings = Settings.load()
    secret = settings.fingerprint_key
    cred = describe(key, secret)

    telemetry = setup_telemetry("otel-openai-scopes-doctor", out, keep_spans=True)
    instrumentor = OpenAIScopesInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # e.g. run under opentelemetry-instrument: use our providers
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    states: list[FamilyState] = []
    attempts = 0
    interrupted = False
    try:
        client = openai.OpenAI(api_key=key, base_url=base_url or None, organization=organization or None,
                               project=project or None, max_retries=0, timeout=timeout)
        sdk_version = getattr(openai, "__version__", "?")
        console.print(
            f"[bold]otel-openai-scopes doctor[/]: key {escape(cred.hint)} ({cred.kind} key, fingerprint "
            f"{cred.fingerprint}{', hmac' if secret else ''})", highlight=False,
        )
        console.print(f"API {display_url(str(client.base_url))}, organization {client.organization or '-'}, "
                      f"project {client.project or '-'}, openai SDK {sdk_version}", highlight=False, markup=False)
        for probe in PROBES:
            st = FamilyState(probe, enabled=model_request or not probe.opt_in)
            found = resolve_call(client, probe) if st.enabled else None
            if found is not None:
                st.call_name, st.call = found
            states.append(st)
        active = [st for st in states if st.enabled]
        console.print(
            f"Probes: {len(active)} families ("
            + ("read-only GETs" if not model_request else "GETs, plus one moderation POST for model.request")
            + "), "
            + (f"{repeat} attempt(s)" if repeat else "until interrupted")
            + (f" every {interval:g}s" if repeat != 1 else "")
            + ("" if model_request else "; model.request not probed (--model-request sends one free moderation)"),
            highlight=False,
        )
        live = repeat != 1
        start = time.monotonic()
        while repeat == 0 or attempts < repeat:
            if attempts:
                delay = start + attempts * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            attempts += 1
            line = []
            for st in active:
                if st.call is None:
                    j = Judgement(NA)
                    st.add(j)
                else:
                    j = run_probe(st.call, st.probe, key)
                    diagnosis, request_id = _span_facts(telemetry)
                    st.add(j, diagnosis, request_id)
                line.append((st.probe.family, j.outcome))
            if live:
                from rich.text import Text

                text = Text(f"attempt {attempts}{'/' + str(repeat) if repeat else ''} {time.strftime('%H:%M:%S')} ")
                for family, outcome in line:
                    text.append(f" {family} ")
                    text.append(SYMBOL[outcome], style=STYLE[outcome])
                console.print(text)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        instrumentor.uninstrument()
        telemetry.shutdown()

    if interrupted:
        console.print(f"interrupted after {attempts} attempt(s)")
    render_matrix(console, states, max(attempts, 1))
    common = common_cause(states)
    if common == REJECTED:
        n = sum(st.counts[ERROR] for st in states)
        console.print(f"KEY REJECTED: every probe ({n} requests) was answered 401 invalid_api_key: the key is wrong, "
                      "revoked, or belongs to another organization, project or base URL. No scope can be judged "
                      "with it.", style="bold red", highlight=False, markup=False, soft_wrap=not console.is_terminal)
    elif common == UNREACHABLE:
        n = sum(st.counts[ERROR] for st in states)
        last = next((st.last_error for st in states if st.last_error), "")
        console.print(f"UNREACHABLE: no answer from {display_url(str(client.base_url))} to any of {n} probe requests "
                      f"({last}): check --base-url / OPENAI_BASE_URL, the proxy and the network.",
                      style="bold red", highlight=False, markup=False, soft_wrap=not console.is_terminal)
    else:
        for style, summary in _summary_lines(states, attempts):
            console.print(summary, style=style, highlight=False, markup=False)
    if attempts == 1:
        console.print("One attempt cannot show flapping: use --repeat N --interval SECONDS to watch the key.",
                      highlight=False)
    where = []
    if telemetry.file_path is not None:
        where.append(f"appended to {telemetry.file_path}")
    if telemetry.otlp_endpoint:
        where.append(f"exported over OTLP to {telemetry.otlp_endpoint}")
    if where:
        console.print("Telemetry " + " and ".join(where), highlight=False, markup=False)
    code = exit_code(st.verdict for st in states)
    if code == EXIT_INCONCLUSIVE and common == REJECTED:
        code = EXIT_KEY_REJECTED
    elif code == EXIT_INCONCLUSIVE and common == UNREACHABLE:
        code = EXIT_UNREACHABLE
    console.print(f"exit {code}: {EXIT_MEANING[code]}", highlight=False)
    return code
