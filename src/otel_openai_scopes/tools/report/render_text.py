"""The terminal report: totals, the windows table, sparkline timelines over a time axis, and the verdict
sentences. Telemetry text is untrusted: every value from a file goes through :func:`..terminal.clean` and is
printed as text, never as rich markup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..terminal import clean, widen_when_piped
from .fleet import plural, verdict_lines
from .timeaxis import Columns, clock, columns, relative, when

if TYPE_CHECKING:
    from .fold import Analysis

_BARS = " ▁▂▃▄▅▆▇█"
LABEL_WIDTH = 32


def sparkline(counts: Sequence[int], top: int | None = None) -> str:
    top = max(counts) if top is None and counts else (top or 0)
    if not top:
        return " " * len(counts)
    return "".join(_BARS[0 if c == 0 else max(1, min(8, round(c * (len(_BARS) - 1) / top)))] for c in counts)


def axis_lines(analysis: Analysis, cols: Columns, indent: int) -> list[str]:
    """Two text lines under a sparkline: a tick every 10 columns, UTC clock and relative time."""
    ticks = list(range(0, cols.n, 10))
    marks = [" "] * cols.n
    for t in ticks:
        marks[t] = "|"
    clock_row = [" "] * (cols.n + 12)
    rel_row = [" "] * (cols.n + 12)
    for t in ticks:
        ns = cols.start_ns(t)
        for row, text in ((clock_row, clock(ns)), (rel_row, relative(analysis, ns))):
            if all(c == " " for c in row[t:t + len(text) + 1]):
                row[t:t + len(text)] = list(text)
    pad = " " * indent
    return [pad + "".join(marks), pad + "".join(clock_row).rstrip() + "  (UTC)",
            pad + "".join(rel_row).rstrip()]


def _table(analysis: Analysis) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Scope-error windows (one per key and set of missing scopes, across processes)")
    for col in ("#", "when (UTC)", "fleet verdict", "live verdicts", "key", "organization/project", "scopes",
                "errors", "ok same key", "clients", "processes"):
        table.add_column(col)
    for i, w in enumerate(analysis.windows, 1):
        # Text cells: scopes and ids come from telemetry (and error bodies), never parsed as rich markup.
        table.add_row(*(Text(clean(cell)) for cell in (
            str(i), when(analysis, w.start_ns, w.end_ns), w.diagnosis,
            ", ".join(f"{p.diagnosis} {p.errors}" for p in w.history()),
            w.hint or w.fingerprint, f"{w.organization or '-'}/{w.project or '-'}", ", ".join(w.scopes),
            str(w.errors), str(w.successes_same_key),
            ", ".join(list(w.clients)[:5]) + (f" +{len(w.client_ids) - 5}" if len(w.client_ids) > 5 else ""),
            f"{len(w.processes)}/{w.processes_seen}",
        )))
    return table


def _timeline(analysis: Analysis, cols: Columns) -> list[str]:
    """One sparkline per key (ok calls, scope errors), per failing process and per failing client."""
    def row(label: str, counts: list[int], mark: str = "") -> str:
        return f"  {clean(label):<{LABEL_WIDTH - 2}}|{sparkline(counts)}| {sum(counts)}{clean(mark)}"

    err_by_key: dict[str, list[int]] = {}
    for w in analysis.windows:
        acc = err_by_key.setdefault(w.fingerprint, [0] * cols.n)
        for k, c in enumerate(cols.of(w.errors_series)):
            acc[k] += c
    lines = []
    for fp, lane in sorted(analysis.keys.items()):
        errs = err_by_key.get(fp, [0] * cols.n)
        name = (lane.hint or fp)[:22]
        lines.append(row(f"key {name} ok", cols.of(lane.ok)))
        if any(errs):
            lines.append(row(f"key {name} errors", errs))
    for _pid, proc in sorted(analysis.processes.items())[:20]:
        errs = cols.of(proc.errors)
        if any(errs):
            lines.append(row("process " + proc.label[:22], errs))
    for cid, client in sorted(analysis.clients.items()):
        errs = cols.of(client.errors)
        if any(errs):
            mark = " (mutated: " + ", ".join(sorted(client.mutated)) + ")" if client.mutated else ""
            lines.append(row("client " + cid[:22], errs, mark))
    return lines + axis_lines(analysis, cols, LABEL_WIDTH + 1)


def render_terminal(analysis: Analysis, console: Any = None, max_columns: int = 60) -> None:
    console = widen_when_piped(console)
    plain = {"markup": False, "highlight": False, "soft_wrap": not console.is_terminal}
    read = f"{analysis.spans} spans read from {plural(len(analysis.files), 'file')}" if analysis.files else ""
    if analysis.unreadable_lines:
        read += f", {plural(analysis.unreadable_lines, 'unreadable line')}"
    console.print(
        f"[bold]{analysis.calls}[/] OpenAI calls, [green]{analysis.calls_ok}[/] ok, "
        f"[red]{analysis.scope_errors}[/] missing-scope errors, {len(analysis.processes)} process(es), "
        f"{(analysis.end_ns - analysis.start_ns) / 1e9:.1f}s" + (f" ({read})" if read else "")
    )
    if not analysis.scope_errors:
        console.print(f"No missing-scope errors in these {analysis.calls} calls.", **plain)
        return
    console.print(_table(analysis))
    cols = columns(analysis, max_columns)
    console.print(f"[bold]Timeline[/] ({cols.per_column * analysis.bucket_seconds():.3g}s per column; "
                  "per key: ok calls, then scope errors)")
    for line in _timeline(analysis, cols):
        console.print(line, **plain)
    console.print("[bold]Diagnosis[/]")
    for line in verdict_lines(analysis):
        # Piped or captured output keeps each verdict on one line, whatever the path lengths in it:
        # hard wraps there split phrases ("your / app") that people and scripts grep for.
        console.print("  " + clean(line), **plain)
