"""The ``doctor`` command: check the inputs, probe every family once per attempt under the instrumentation, print.

The probe runs under :class:`~otel_openai_scopes.instrumentor.OpenAIScopesInstrumentor`, so it emits exactly the
instrumentation's spans and metrics (``--out`` file, OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), and reads
back the diagnosis and request id of each scope error from its own spans.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ... import attributes as A
from ...fingerprint import Credential
from .. import exit_codes as X
from ..terminal import clean, widen_when_piped
from ..urls import ShownUrl
from . import render
from .credential import Coverage, coverage, read_token
from .inputs import UsageError, check_base_url, check_options, read_key
from .probes import PROBES, plan, resolve_call, send
from .verdicts import NA, FamilyState, Judgement, common_cause, exit_code


@dataclass
class Run:
    """One doctor run: the client, the families, and what the answers may quote that must not be shown."""

    client: Any
    telemetry: Any
    states: list[FamilyState]
    secrets: tuple[str, ...]  # the key, its claim values and the base path's hidden segments
    api: ShownUrl
    coverage: dict[str, Coverage]  # family -> the token's own grant against its needs ({} for keys)
    attempts: int = 0

    @property
    def active(self) -> list[FamilyState]:
        return [st for st in self.states if st.enabled]

    def attempt(self) -> list[tuple[str, str]]:
        """Send every enabled probe once; returns (family, outcome) in table order."""
        self.attempts += 1
        line = []
        for st in self.active:
            if st.call is None:
                j = Judgement(NA)
                st.add(j)
            else:
                j = send(st.call, st.planned.probe, *self.secrets)
                st.add(j, *_span_facts(self.telemetry))
            line.append((st.family, j.outcome))
        return line


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


def _families(client: Any, states: list[FamilyState]) -> list[FamilyState]:
    """Each enabled family with the SDK call that sends its probe (none: the installed SDK lacks it)."""
    for st in states:
        found = resolve_call(client, st.planned.calls) if st.enabled else None
        if found is not None:
            st.call_name, st.call = found
    return states


def _loop(run: Run, console: Any, repeat: int, interval: float) -> bool:
    """Attempts until ``repeat`` (0: until interrupted), spaced ``interval`` apart; True when interrupted."""
    start = time.monotonic()
    try:
        while repeat == 0 or run.attempts < repeat:
            if run.attempts:
                delay = start + run.attempts * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            line = run.attempt()
            if repeat != 1:
                render.attempt_line(console, run.attempts, repeat, line)
    except KeyboardInterrupt:
        return True
    return False


def _conclude(run: Run, console: Any, interrupted: bool, otlp: str) -> int:
    if interrupted:
        render.say(console, f"interrupted after {run.attempts} attempt(s)")
    attempts = max(run.attempts, 1)
    render.matrix(console, run.states, attempts, run.api.base_path)
    common = common_cause(run.states)
    render.conclusion(console, run.states, attempts, common, run.api.text, run.coverage)
    render.telemetry_line(console, run.telemetry.file_path, otlp)
    code = exit_code((st.verdict for st in run.states), common)
    render.exit_line(console, code)
    return code


@dataclass(frozen=True)
class Options:
    """What to probe and how (checked before anything runs)."""

    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    repeat: int = 1
    interval: float = 10.0
    out: str | Path | None = None
    model_request: bool = False
    timeout: float = 15.0


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
    from rich.console import Console

    console = widen_when_piped(console)
    err_console = err_console or Console(stderr=True)
    environ = os.environ if environ is None else environ
    options = Options(base_url, organization, project, repeat, interval, out, model_request, timeout)
    try:
        check_options(repeat, interval, timeout)
        key = read_key(key_env, use_stdin, environ, stdin)
        url = base_url or environ.get("OPENAI_BASE_URL") or ""
        if url:
            check_base_url(url)
        settings, matcher = _settings()
    except UsageError as exc:
        err_console.print(f"doctor: {clean(exc)}", highlight=False, markup=False, soft_wrap=True)
        return X.USAGE
    return _probe(key, options, console, settings, matcher)


def _settings() -> tuple[Any, Any]:
    """The instrumentation's settings and scope map (with the user's overrides), as the spans will use them."""
    from ...config import Settings
    from ...scope_map import build_matcher

    try:
        settings = Settings.load()
    except Exception as exc:  # noqa: BLE001 - a bad setting is a usage error, named, not a traceback
        raise UsageError(f"a setting is invalid ({type(exc).__name__}: {exc})") from None
    try:
        return settings, build_matcher(settings.scope_map)
    except Exception as exc:  # noqa: BLE001 - any unreadable map is a usage error, named, not a traceback
        raise UsageError(f"the scope map {settings.scope_map} cannot be read ({type(exc).__name__})") from None


def _read_locally(key: str, cred: Credential, states: Sequence[FamilyState], secret: bytes | None,
                  console: Any) -> dict[str, Coverage]:
    """The header, and for a token what it says of itself against each probe, before any request."""
    reading = read_token(key, cred)
    render.header(console, cred.hint, cred.kind, cred.fingerprint, bool(secret), reading is not None)
    if reading is None:
        return {}
    rows = coverage(reading, cred, [st.planned for st in states if st.enabled])
    render.token_section(console, reading, rows)
    return {row.family: row for row in rows} if reading.scopes_listed else {}


def _probe(key: str, o: Options, console: Any, settings: Any, matcher: Any) -> int:
    import openai

    from ...fingerprint import describe
    from ...instrumentor import OpenAIScopesInstrumentor
    from ..telemetry_setup import setup_telemetry

    secret = settings.fingerprint_key
    cred = describe(key, secret)
    states = [FamilyState(plan(p, matcher), enabled=o.model_request or not p.opt_in) for p in PROBES]
    covered = _read_locally(key, cred, states, secret, console)
    telemetry = setup_telemetry("otel-openai-scopes-doctor", o.out, keep_spans=True)
    instrumentor = OpenAIScopesInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # e.g. run under opentelemetry-instrument: use our providers
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        client = openai.OpenAI(api_key=key, base_url=o.base_url or None, organization=o.organization or None,
                               project=o.project or None, max_retries=0, timeout=o.timeout)
        api = ShownUrl.of(str(client.base_url), key, *cred.private)
        run = Run(client, telemetry, _families(client, states), (key, *cred.private, *api.hidden), api, covered)
        render.api_line(console, api.text, client.organization or "", client.project or "",
                        getattr(openai, "__version__", "?"))
        render.probes_line(console, len(run.active), o.model_request, o.repeat, o.interval)
        interrupted = _loop(run, console, o.repeat, o.interval)
    finally:
        instrumentor.uninstrument()
        telemetry.shutdown()
    return _conclude(run, console, interrupted, telemetry.otlp_endpoint and ShownUrl.of(telemetry.otlp_endpoint).text)


__all__: Sequence[str] = ["Options", "run_doctor"]
