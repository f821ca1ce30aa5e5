"""What doctor prints: the header, one line per attempt in canary mode, the family x attempt matrix, the verdict
lines and the exit line.

Everything that did not come from this package (the server's error text and request ids, the organization and
project, paths) goes through :func:`..terminal.clean` and is printed as plain text, never as rich markup, so a
hostile server cannot move the cursor, retitle the terminal or rewrite a verdict line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ... import verdicts as V
from ..terminal import clean
from .credential import GRANTED, LACKS, NOT_LISTED, Coverage, TokenReading, token_lines
from .verdicts import ERROR, MAX_HISTORY, MISSING, NA, OK, REJECTED, SKIPPED, UNREACHABLE, FamilyState, exit_meaning

SYMBOL = {OK: "+", MISSING: "X", ERROR: "!", NA: "-", SKIPPED: "-"}
STYLE = {OK: "green", MISSING: "bold red", ERROR: "yellow", NA: "dim", SKIPPED: "dim"}
VERDICT_STYLE = {V.PROBE_GRANTED: "green", V.PROBE_MISSING: "bold red", V.PROBE_FLAPPING: "bold magenta",
                 V.PROBE_INCONCLUSIVE: "yellow", V.PROBE_NOT_AVAILABLE: "dim", V.PROBE_NOT_PROBED: "dim"}
LEGEND = ("+ allowed (2xx, or 404 for an id that does not exist)  X missing scope (401/403 naming it)  "
          "! other error, no scope verdict  - not probed")


def say(console: Any, *parts: Any, style: str = "") -> None:
    """One line of plain text: each part cleaned (a part may be ``(text, style)``), no markup, no hard wraps when
    piped."""
    from rich.text import Text

    text = Text(style=style)
    for part in parts:
        if isinstance(part, tuple):
            text.append(clean(part[0]), style=part[1])
        else:
            text.append(clean(part))
    console.print(text, soft_wrap=not console.is_terminal, highlight=False)


def header(console: Any, hint: str, kind: str, fingerprint: str, hmac: bool, token: bool) -> None:
    what = f"token {hint} ({kind}" if token else f"key {hint} ({kind} key"
    say(console, ("otel-openai-scopes doctor", "bold"),
        f": {what}, fingerprint {fingerprint}{', hmac' if hmac else ''})")


def api_line(console: Any, api: str, organization: str, project: str, sdk_version: str) -> None:
    say(console, f"API {api}, organization {organization or '-'}, project {project or '-'}, openai SDK {sdk_version}")


_STANDING = {GRANTED: ("granted by its claims", "green"),
             LACKS: ("LACKS {scopes} (token_lacks_scope: re-authorise, requesting it)", "bold red"),
             NOT_LISTED: ("{scopes} not listed (the grant is incomplete): only the server can tell", "yellow")}


def token_section(console: Any, reading: TokenReading, rows: Sequence[Coverage]) -> None:
    """The token's own grant against what each probe needs: read locally, before (and without) any request."""
    from rich.table import Table
    from rich.text import Text

    say(console, "Token, read locally (not verified, nothing sent yet):")
    for label, text in token_lines(reading):
        say(console, f"  {label:<8} {text}")
    if not reading.scopes_listed:
        say(console, "  Its claims list no scopes the instrumentation can use: only the server can tell what it "
            "grants (the probes below).")
        return
    table = Table(title="The token's own grant vs what each probe needs (scope map)", show_lines=False)
    for name in ("family", "needs", "the token's claims"):
        table.add_column(name, no_wrap=name == "family")
    for row in rows:
        text, style = _STANDING.get(row.standing, (row.standing, ""))
        table.add_row(Text(clean(row.family)), Text(clean(", ".join(row.required) or "(not in the scope map)")),
                      Text(clean(text.format(scopes=", ".join(row.scopes))), style=style))
    console.print(table)


def probes_line(console: Any, families: int, model_request: bool, repeat: int, interval: float) -> None:
    say(console, f"Probes: {families} families ("
        + ("read-only GETs" if not model_request else "GETs, plus one moderation POST for model.request") + "), "
        + (f"{repeat} attempt(s)" if repeat else "until interrupted")
        + (f" every {interval:g}s" if repeat != 1 else "")
        + ("" if model_request else "; model.request not probed (--model-request sends one free moderation)"))


def attempt_line(console: Any, attempt: int, repeat: int, outcomes: Sequence[tuple[str, str]]) -> None:
    parts: list[Any] = [f"attempt {attempt}{'/' + str(repeat) if repeat else ''} {time.strftime('%H:%M:%S')} "]
    for family, outcome in outcomes:
        parts += [f" {family} ", (SYMBOL[outcome], STYLE[outcome])]
    say(console, *parts)


def _notes(state: FamilyState, attempts: int) -> str:
    v, c = state.verdict, state.counts
    if v in (V.PROBE_MISSING, V.PROBE_FLAPPING):
        text = f"missing {_scopes(state)} {c[MISSING]}/{attempts}"
        if state.diagnosis:
            text += f", diagnosis {state.diagnosis}"
        if c[ERROR]:
            text += f"; {c[ERROR]} errors"
        return text
    if v == V.PROBE_NOT_AVAILABLE:
        return f"the installed openai SDK has no {' / '.join(state.planned.calls)}"
    if v == V.PROBE_NOT_PROBED:
        return "opt-in: --model-request" if state.planned.probe.opt_in else ""
    if c[ERROR]:
        return f"{c[ERROR]}/{attempts} errors, last: {state.last_error}"
    return state.call_name


def _scopes(state: FamilyState) -> str:
    return ", ".join(s for s, _ in state.missing_scopes.most_common())


def matrix(console: Any, states: Sequence[FamilyState], attempts: int, base_path: str) -> None:
    """The family x attempt table; requests shown as the spans' ``url.template`` (``GET /v1/threads/{thread_id}``)."""
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
        planned = st.planned
        outcomes = Text()
        for o in list(st.history) or [SKIPPED] * shown:
            outcomes.append(SYMBOL.get(o, "?"), style=STYLE.get(o, ""))
        verdict = st.verdict
        table.add_row(Text(clean(st.family)), Text(clean(", ".join(planned.scopes) or "(not in the scope map)")),
                      Text(clean(f"{planned.probe.method} {base_path}{planned.template}")), outcomes,
                      Text(verdict.upper() if verdict in (V.PROBE_MISSING, V.PROBE_FLAPPING) else verdict,
                           style=VERDICT_STYLE.get(verdict, "")),
                      Text(clean(_notes(st, attempts))))
    console.print(table)
    console.print(LEGEND, highlight=False, markup=False)


def _ids(st: FamilyState) -> str:
    return f" (request ids {', '.join(st.request_ids)})" if st.request_ids else ""


def _missing_because(coverage: Coverage | None) -> str:
    """Why a scope is refused on every attempt, as far as the credential itself tells."""
    if coverage is not None and coverage.standing == LACKS:
        return (f"the token's own claims do not grant {', '.join(coverage.scopes)} (token_lacks_scope): re-authorise, "
                "requesting it")
    if coverage is not None and coverage.standing == GRANTED:
        return ("the token's own claims grant it, so re-authorising will not help: the role of its user or app in "
                "the organization or project lacks it, or the platform refuses it")
    return "a restricted key without this permission, or the key owner's project role lacks it"


def family_lines(console: Any, states: Sequence[FamilyState], attempts: int,
                 coverage: dict[str, Coverage] | None = None) -> None:
    """One line per family that is not simply granted: what it means and what to do."""
    for st in states:
        v, c = st.verdict, st.counts
        if v == V.PROBE_FLAPPING:
            say(console, f"FLAPPING {st.family}: {_scopes(st)} missing on {c[MISSING]} and allowed on {c[OK]} of "
                f"{attempts} attempts with the same key: the key's scopes flap (platform-side, or a role/key change "
                f"still propagating). Keep the request ids for OpenAI support{_ids(st)}.", style="bold magenta")
        elif v == V.PROBE_MISSING:
            because = _missing_because((coverage or {}).get(st.family))
            say(console, f"MISSING {st.family}: {_scopes(st)} on every attempt with a verdict ({c[MISSING]}): "
                f"{because}{_ids(st)}.", style="bold red")
        elif v == V.PROBE_INCONCLUSIVE:
            say(console, f"INCONCLUSIVE {st.family}: no attempt got a scope verdict; last error: {st.last_error}",
                style="yellow")


def conclusion(console: Any, states: Sequence[FamilyState], attempts: int, common: str, api: str,
               coverage: dict[str, Coverage] | None = None) -> None:
    """One verdict line when every answer said the same (key rejected, unreachable), else one per family."""
    n = sum(st.counts[ERROR] for st in states)
    if common == REJECTED:
        say(console, f"KEY REJECTED: every probe ({n} requests) was answered 401 invalid_api_key: the key is wrong, "
            "revoked, or belongs to another organization, project or base URL. No scope can be judged with it.",
            style="bold red")
    elif common == UNREACHABLE:
        last = next((st.last_error for st in states if st.last_error), "")
        say(console, f"UNREACHABLE: no answer from {api} to any of {n} probe requests ({last}): check --base-url / "
            "OPENAI_BASE_URL, the proxy and the network.", style="bold red")
    else:
        family_lines(console, states, attempts, coverage)
    if attempts == 1:
        say(console, "One attempt cannot show flapping: use --repeat N --interval SECONDS to watch the key.")


def telemetry_line(console: Any, file_path: Any, otlp: str) -> None:
    where = []
    if file_path is not None:
        where.append(f"appended to {file_path}")
    if otlp:
        where.append(f"exported over OTLP to {otlp}")
    if where:
        say(console, "Telemetry " + " and ".join(where))


def exit_line(console: Any, code: int) -> None:
    say(console, f"exit {code}: {exit_meaning(code)}")
