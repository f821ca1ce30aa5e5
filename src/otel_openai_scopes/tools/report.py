"""Incident report from exported telemetry: scope-error windows, their diagnosis, who was involved.

Reads OTLP JSON lines (the demo's file, or a Collector ``file`` exporter) from one or many
processes and answers what one process cannot: which keys and clients failed, when, with what
diagnosis, and whether every process failed at once (platform-side) or only some.
"""

from __future__ import annotations

import html
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .. import attributes as A
from .otlp_json import SpanRecord, read_spans
from .terminal import widen_when_piped

EXPLANATION = {
    A.DIAGNOSIS_SCOPE_FLAPPING: (
        "platform-side: the same key, organization, project and host succeeded for this scope shortly before "
        "and failed now, from clients that were not modified. Not your code; keep the request ids for OpenAI support."
    ),
    A.DIAGNOSIS_CLIENT_MUTATED: (
        "your app: the failing client no longer sends the credentials it was built with (see openai.client.mutated); "
        "other clients with the original key kept working. Look for code that changes api_key/organization/project "
        "on a shared client (e.g. a task that swaps it and dies before restoring it)."
    ),
    A.DIAGNOSIS_NEVER_GRANTED: (
        "configuration: this key has not succeeded for this scope and keeps failing: a restricted key without the "
        "scope, or the key owner's project role lacks the permission."
    ),
    A.DIAGNOSIS_UNKNOWN: "not enough evidence yet (first failures with no earlier success or failure history).",
}


@dataclass
class Window:
    """A burst of scope errors with one diagnosis for one key."""

    diagnosis: str
    fingerprint: str
    hint: str = ""
    start_ns: int = 0
    end_ns: int = 0
    errors: int = 0
    successes_same_key: int = 0
    scopes: Counter = field(default_factory=Counter)
    clients: dict[str, str] = field(default_factory=dict)  # client id -> origin
    mutated: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    processes: set[str] = field(default_factory=set)
    request_ids: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    spans: int
    calls_ok: int
    scope_errors: int
    start_ns: int
    end_ns: int
    windows: list[Window]
    processes: set[str]
    by_key: dict[str, list[int]]  # fingerprint -> error counts per bucket
    by_client: dict[str, list[int]]
    buckets: int
    key_hints: dict[str, str]
    diagnoses: Counter

    def bucket_seconds(self) -> float:
        return max(1e-9, (self.end_ns - self.start_ns) / 1e9 / self.buckets)


def _is_call(span: SpanRecord) -> bool:
    return A.TEMPLATE in span.attributes and A.HTTP_METHOD in span.attributes


def analyze(spans: Iterable[SpanRecord], gap_seconds: float = 60.0, buckets: int = 60) -> Analysis:
    calls = sorted((s for s in spans if _is_call(s)), key=lambda s: s.start_ns)
    errors = [s for s in calls if s.attributes.get(A.SCOPE_ERROR) is True]
    ok = [s for s in calls if 200 <= int(s.attributes.get(A.HTTP_STATUS, 0) or 0) < 400]
    start = calls[0].start_ns if calls else 0
    end = max((s.end_ns for s in calls), default=0)
    windows: list[Window] = []
    open_windows: dict[tuple[str, str], Window] = {}
    gap_ns = int(gap_seconds * 1e9)
    hints: dict[str, str] = {}
    for s in calls:
        fp = str(s.attributes.get(A.KEY_FINGERPRINT, ""))
        if fp and A.KEY_HINT in s.attributes:
            hints.setdefault(fp, str(s.attributes[A.KEY_HINT]))
    for s in errors:
        a = s.attributes
        fp = str(a.get(A.KEY_FINGERPRINT, ""))
        label = str(a.get(A.DIAGNOSIS, A.DIAGNOSIS_UNKNOWN))
        key = (label, fp)
        w = open_windows.get(key)
        if w is None or s.start_ns - w.end_ns > gap_ns:
            w = Window(diagnosis=label, fingerprint=fp, hint=hints.get(fp, ""), start_ns=s.start_ns)
            windows.append(w)
            open_windows[key] = w
        w.end_ns = max(w.end_ns, s.end_ns)
        w.errors += 1
        for scope in a.get(A.SCOPE_MISSING, []) or []:
            w.scopes[scope] += 1
        cid = str(a.get(A.CLIENT_ID, ""))
        w.clients.setdefault(cid, str(a.get(A.CLIENT_ORIGIN, "")))
        for m in a.get(A.CLIENT_MUTATED, []) or []:
            w.mutated[m] += 1
        if A.OPERATION in a:
            w.operations[str(a[A.OPERATION])] += 1
        w.processes.add(s.process)
        rid = a.get(A.REQUEST_ID)
        if rid and len(w.request_ids) < 5:
            w.request_ids.append(str(rid))
    # Successes of the same key inside each window tell "intermittent" from "everything failed".
    # Start times per key, in order (calls are sorted), so each window is two binary searches.
    ok_starts: dict[Any, list[int]] = defaultdict(list)
    for s in ok:
        ok_starts[s.attributes.get(A.KEY_FINGERPRINT)].append(s.start_ns)
    for w in windows:
        starts = ok_starts.get(w.fingerprint, [])
        w.successes_same_key = bisect_right(starts, w.end_ns) - bisect_left(starts, w.start_ns)
    by_key: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    by_client: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    span_ns = max(1, end - start)
    for s in errors:
        b = min(buckets - 1, int((s.start_ns - start) * buckets / span_ns))
        by_key[str(s.attributes.get(A.KEY_FINGERPRINT, ""))][b] += 1
        by_client[str(s.attributes.get(A.CLIENT_ID, ""))][b] += 1
    return Analysis(
        spans=len(calls),
        calls_ok=len(ok),
        scope_errors=len(errors),
        start_ns=start,
        end_ns=end,
        windows=windows,
        processes={s.process for s in calls},
        by_key=dict(by_key),
        by_client=dict(by_client),
        buckets=buckets,
        key_hints=hints,
        diagnoses=Counter(str(s.attributes.get(A.DIAGNOSIS, A.DIAGNOSIS_UNKNOWN)) for s in errors),
    )


def analyze_files(paths: Sequence[str | Path], gap_seconds: float = 60.0, buckets: int = 60) -> Analysis:
    return analyze(read_spans(paths), gap_seconds, buckets)


def _offset(analysis: Analysis, ns: int) -> str:
    return f"+{(ns - analysis.start_ns) / 1e9:.1f}s"


_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts) if counts else 0
    if not top:
        return " " * len(counts)
    return "".join(_BARS[0 if c == 0 else max(1, round(c * (len(_BARS) - 1) / top))] for c in counts)


def verdict_lines(analysis: Analysis) -> list[str]:
    """Plain-language sentences, one per window: what failed, when, and what it means."""
    lines = []
    for i, w in enumerate(analysis.windows, 1):
        scopes = ", ".join(s for s, _ in w.scopes.most_common())
        clients = len(w.clients)
        who = f"{clients} client{'s' if clients != 1 else ''}"
        if w.diagnosis == A.DIAGNOSIS_CLIENT_MUTATED:
            origins = "; ".join(sorted({o for o in w.clients.values() if o}))
            who += f" (built at {origins})" if origins else ""
            who += f", changed fields: {', '.join(w.mutated)}" if w.mutated else ""
        lines.append(
            f"Window {i} [{_offset(analysis, w.start_ns)} .. {_offset(analysis, w.end_ns)}]: {w.errors} scope errors "
            f"({scopes}) for key {w.hint or w.fingerprint or 'none'} from {who} in {len(w.processes)} process(es), "
            f"{w.successes_same_key} successes of the same key meanwhile -> {w.diagnosis}: {EXPLANATION.get(w.diagnosis, '')}"
        )
    return lines


def render_terminal(analysis: Analysis, console=None) -> None:
    from rich.table import Table
    from rich.text import Text

    console = widen_when_piped(console)
    console.print(
        f"[bold]{analysis.spans}[/] OpenAI calls, [green]{analysis.calls_ok}[/] ok, "
        f"[red]{analysis.scope_errors}[/] missing-scope errors, {len(analysis.processes)} process(es), "
        f"{(analysis.end_ns - analysis.start_ns) / 1e9:.1f}s"
    )
    if not analysis.scope_errors:
        console.print("No missing-scope errors in this telemetry.")
        return
    table = Table(title="Scope-error windows", show_lines=False)
    for col in ("#", "when", "diagnosis", "key", "scopes", "errors", "ok same key", "clients", "processes"):
        table.add_column(col)
    for i, w in enumerate(analysis.windows, 1):
        # Text cells: scopes and ids come from telemetry (and error bodies), never parsed as rich markup.
        table.add_row(*(Text(cell) for cell in (
            str(i),
            f"{_offset(analysis, w.start_ns)}..{_offset(analysis, w.end_ns)}",
            w.diagnosis,
            w.hint or w.fingerprint,
            ", ".join(w.scopes),
            str(w.errors),
            str(w.successes_same_key),
            ", ".join(w.clients),
            f"{len(w.processes)}/{len(analysis.processes)}",
        )))
    console.print(table)
    console.print(f"[bold]Timeline[/] (scope errors, {analysis.bucket_seconds():.2f}s per column)")
    for fp, counts in sorted(analysis.by_key.items()):
        console.print(f"  key    {analysis.key_hints.get(fp, fp):>22} |{sparkline(counts)}| {sum(counts)}",
                      markup=False, highlight=False)
    for cid, counts in sorted(analysis.by_client.items()):
        console.print(f"  client {cid:>22} |{sparkline(counts)}| {sum(counts)}", markup=False, highlight=False)
    console.print("[bold]Diagnosis[/]")
    for line in verdict_lines(analysis):
        # Piped or captured output keeps each verdict on one line, whatever the path lengths in it:
        # hard wraps there split phrases ("your / app") that people and scripts grep for.
        console.print("  " + line, markup=False, highlight=False, soft_wrap=not console.is_terminal)


def write_html(analysis: Analysis, path: str | Path) -> Path:
    """A self-contained HTML page (inline SVG timeline, tables) to attach to an incident ticket."""
    path = Path(path)
    rows = []
    width, row_h = 900, 22
    series = [("key " + analysis.key_hints.get(fp, fp), c) for fp, c in sorted(analysis.by_key.items())]
    series += [("client " + cid, c) for cid, c in sorted(analysis.by_client.items())]
    top = max((max(c) for _, c in series), default=1) or 1
    bar_w = (width - 260) / max(1, analysis.buckets)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(series) + 30}">']
    for r, (label, counts) in enumerate(series):
        y = r * row_h + 10
        svg.append(f'<text x="0" y="{y + 14}" font-size="12" font-family="monospace">{html.escape(label)}</text>')
        for b, c in enumerate(counts):
            if c:
                h = max(2.0, (row_h - 4) * c / top)
                svg.append(
                    f'<rect x="{260 + b * bar_w:.1f}" y="{y + row_h - 4 - h:.1f}" width="{max(1.0, bar_w - 1):.1f}" '
                    f'height="{h:.1f}" fill="#c0392b"><title>{c} errors</title></rect>'
                )
    svg.append("</svg>")
    for i, w in enumerate(analysis.windows, 1):
        rows.append(
            "<tr>" + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (i, f"{_offset(analysis, w.start_ns)}..{_offset(analysis, w.end_ns)}", w.diagnosis,
                          w.hint or w.fingerprint, ", ".join(w.scopes), w.errors, w.successes_same_key,
                          ", ".join(f"{c} ({o})" for c, o in w.clients.items()),
                          f"{len(w.processes)}/{len(analysis.processes)}", ", ".join(w.request_ids))
            ) + "</tr>"
        )
    verdicts = "".join(f"<li>{html.escape(v)}</li>" for v in verdict_lines(analysis))
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>OpenAI scope-error report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>OpenAI scope-error report</h1>
<p>{analysis.spans} calls, {analysis.calls_ok} ok, {analysis.scope_errors} missing-scope errors,
{len(analysis.processes)} process(es).</p>
<h2>Timeline</h2>{''.join(svg)}
<h2>Windows</h2><table><tr><th>#</th><th>when</th><th>diagnosis</th><th>key</th><th>scopes</th><th>errors</th>
<th>ok same key</th><th>clients (origin)</th><th>processes</th><th>request ids</th></tr>{''.join(rows)}</table>
<h2>Diagnosis</h2><ul>{verdicts}</ul></body></html>"""
    path.write_text(doc, encoding="utf-8")
    return path
