"""The HTML page as data: every bar, lane, band, tick and table cell with its position, colour and hover text,
built from an analysis apart from any markup (:mod:`.render_html` writes it through the templates).

Lanes per process and client show each time column's calls in proportion: the column's height is its calls,
split into scope errors, coloured by their window's fleet verdict, and ok calls (a platform flap of 485 ok and 477
errors reads as half orange, half green, not as a red bar).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ... import verdicts as V
from .fleet import verdict_lines
from .lanes import ClientLane, ErrorLane
from .timeaxis import clock, columns, iso, relative, tick_step_ns
from .windows import Window

if TYPE_CHECKING:
    from .fold import Analysis

LEFT, PLOT_W, KEY_H, TOP = 250, 860, 90, 30
MAX_LANES = 60
#: errors of a lane whose window keys exceeded limits.MAX_LANE_SETS: shown, with no verdict
UNATTRIBUTED = "verdict not tracked"


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    fill: str
    tip: str
    verdict: str = ""  # "" for ok calls


@dataclass
class KeyChart:
    fingerprint: str
    hint: str
    name: str
    calls: int
    scope_errors: int
    mid: float
    bars: list[Bar]


@dataclass
class Marker:
    x: float
    y: float
    tip: str


@dataclass
class Lane:
    name: str
    sub: str
    y: float
    height: float
    bars: list[Bar]
    marker: Marker | None = None


@dataclass
class LaneGroup:
    title: str
    y: float
    cls: str
    lanes: list[Lane]


@dataclass
class Band:
    x: float
    w: float
    h: float
    colour: str
    title: str
    label_x: float
    label: str


@dataclass
class Tick:
    x: float
    clock: str
    rel: str


@dataclass
class Page:
    """Everything the page shows."""

    totals: dict[str, object]
    warnings: list[str]
    legend: list[tuple[str, str]]  # (colour, text)
    step_label: str
    key_charts: list[KeyChart] = field(default_factory=list)
    lane_groups: list[LaneGroup] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    tick_millis: bool = False
    rows: list[list[object]] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    t0: int = 0
    t1: int = 0
    y_end: float = 0.0

    @property
    def height(self) -> float:
        return self.y_end + 30


class _Builder:
    def __init__(self, analysis: Analysis, max_columns: int) -> None:
        self.a = analysis
        self.cols = cols = columns(analysis, max_columns)
        self.col_w = PLOT_W / cols.n
        self.t0, self.t1 = cols.start_ns(0), cols.start_ns(cols.n)
        self.span_ns = max(1, self.t1 - self.t0)
        self.rids: dict[tuple[str, int], list[str]] = {}  # request ids per (key, column), for the hover text
        for w in analysis.windows:
            for ns, rid in w.request_ids:
                self.rids.setdefault((w.fingerprint, cols.of_bucket(analysis.grid.bucket(ns))), []).append(rid)

    def x_of(self, ns: int) -> float:
        return LEFT + (ns - self.t0) * PLOT_W / self.span_ns

    def x_col(self, k: int) -> float:
        return LEFT + k * self.col_w

    @property
    def bar_w(self) -> float:
        return max(1.0, self.col_w - 1)

    def bucket_label(self, col: int) -> str:
        return f"{clock(self.cols.start_ns(col))}Z {relative(self.a, self.cols.start_ns(col))} .. " \
               f"{relative(self.a, self.cols.start_ns(col + 1))}"

    # -- per key: successes up, scope errors down (stacked by fleet verdict) ----------------------------
    def key_charts(self, y: float) -> tuple[list[KeyChart], float]:
        charts = []
        for fp, lane in sorted(self.a.keys.items()):
            ok = self.cols.of(lane.ok)
            by_verdict: dict[str, list[int]] = {}
            for w in self.a.windows:
                if w.fingerprint == fp:
                    self._add(by_verdict, w.diagnosis, self.cols.of(w.errors_series))
            errs_total = [sum(v[k] for v in by_verdict.values()) for k in range(self.cols.n)]
            top_ok, top_err = max(ok) or 1, max(errs_total) or 1
            mid = y + KEY_H / 2
            bars = []
            for k in range(self.cols.n):
                tip = [self.bucket_label(k), f"{ok[k]} ok"]
                if ok[k]:
                    h = (KEY_H / 2 - 4) * ok[k] / top_ok
                    bars.append(Bar(self.x_col(k), mid - h, self.bar_w, h, V.OK_COLOUR, "\n".join(tip)))
                down = 0.0
                for verdict, counts in sorted(by_verdict.items()):
                    if counts[k]:
                        h = (KEY_H / 2 - 4) * counts[k] / top_err
                        tip_e = [*tip, f"{counts[k]} scope errors, verdict {verdict}"]
                        if (fp, k) in self.rids:
                            tip_e.append("request ids: " + ", ".join(self.rids[(fp, k)][:5]))
                        bars.append(Bar(self.x_col(k), mid + down, self.bar_w, h, V.meaning(verdict).colour,
                                        "\n".join(tip_e), verdict))
                        down += h
            charts.append(KeyChart(fp, lane.hint, lane.hint or fp or "(no key)", lane.calls, lane.scope_errors, mid,
                                   bars))
            y += KEY_H + 8
        return charts, y

    @staticmethod
    def _add(acc: dict[str, list[int]], verdict: str, counts: list[int]) -> None:
        mine = acc.setdefault(verdict, [0] * len(counts))
        for k, c in enumerate(counts):
            mine[k] += c

    # -- lanes per process and client: calls in proportion, errors by verdict ------------------------------
    def errors_by_verdict(self, lane: ErrorLane) -> dict[str, list[int]]:
        """The lane's scope errors per column and fleet verdict of the window each fell into."""
        g, cols = self.a.grid, self.cols
        out: dict[str, list[int]] = {}
        for key, series in lane.by_window.items():
            wset = self.a.window_sets.sets.get(key)
            windows = wset.windows if wset is not None else []
            starts = [g.bucket(w.start_ns) for w in windows]
            ends = [g.bucket(w.end_ns) for w in windows]
            for k, c in enumerate(series.counts):
                if c:
                    b = series.offset + k
                    col = cols.of_bucket(b)
                    if 0 <= col < cols.n:
                        out.setdefault(_verdict_at(windows, starts, ends, b), [0] * cols.n)[col] += c
        total = cols.of(lane.errors)
        attributed = [sum(v[k] for v in out.values()) for k in range(cols.n)]
        if total != attributed:
            out[UNATTRIBUTED] = [t - a for t, a in zip(total, attributed)]
        return out

    def lane(self, name: str, sub: str, lane: ErrorLane, y: float, h: float, marker: Marker | None) -> Lane:
        ok, errs = self.cols.of(lane.ok), self.cols.of(lane.errors)
        by_verdict = self.errors_by_verdict(lane)
        order = [v for v in V.ALL if v in by_verdict] + sorted(v for v in by_verdict if v not in V.ALL)
        top = max(max(o + e for o, e in zip(ok, errs)), 1)
        inner = h - 2
        bars = []
        for k in range(self.cols.n):
            total = ok[k] + errs[k]
            if not total:
                continue
            column_h = max(2.0, inner * total / top)
            tip = f"{name}\n{self.bucket_label(k)}\n{ok[k]} ok, {errs[k]} scope errors"
            segments = [(v, by_verdict[v][k]) for v in order if by_verdict[v][k]] + [("", ok[k])] * bool(ok[k])
            bottom = y + inner
            for verdict, n in segments:  # from the bottom: errors by verdict, then ok calls
                top_y = max(y, bottom - max(1.0, column_h * n / total))
                if verdict:
                    label = verdict if verdict == UNATTRIBUTED else f"verdict {verdict}"
                    colour = V.meaning(V.UNKNOWN if verdict == UNATTRIBUTED else verdict).colour
                    bars.append(Bar(self.x_col(k), top_y, self.bar_w, bottom - top_y, colour,
                                    f"{tip}\n{n} {label}", verdict))
                else:
                    bars.append(Bar(self.x_col(k), top_y, self.bar_w, bottom - top_y, V.OK_COLOUR, tip))
                bottom = top_y
        return Lane(name, sub, y, h, bars, marker)

    def lane_group(self, title: str, cls: str, rows: list[tuple[str, str, ErrorLane, Marker | None]],
                   y: float) -> tuple[LaneGroup, float]:
        h = 16 if len(rows) > 8 else 22
        group = LaneGroup(title, y + 14, cls, [])
        y += 22
        for name, sub, lane, marker in rows:
            if marker is not None:
                marker.y = y
            group.lanes.append(self.lane(name, sub, lane, y, h, marker))
            y += h
        return group, y + 10

    def client_marker(self, c: ClientLane) -> Marker | None:
        if not c.mutated:
            return None
        return Marker(self.x_of(c.mutated_first_ns), 0.0,
                      f"mutated at {iso(c.mutated_first_ns)}: {', '.join(sorted(c.mutated))}")

    # -- windows as bands, the time axis ------------------------------------------------------------------
    def bands(self, y_end: float) -> list[Band]:
        out, label_end = [], -1e9  # labels of windows starting close together go side by side
        for i, w in enumerate(self.a.windows, 1):
            xa = self.x_of(w.start_ns)
            xb = max(self.x_of(w.end_ns), xa + 2)
            label_x = max(xa + 2, label_end + 3)
            label_end = label_x + 7 * len(f"W{i}")
            out.append(Band(xa, xb - xa, y_end - TOP, V.meaning(w.diagnosis).colour,
                            f"Window {i}: {w.diagnosis}, {w.errors} errors", label_x, f"W{i}"))
        return out

    def ticks(self) -> tuple[list[Tick], bool]:
        step = tick_step_ns(self.span_ns)
        if step < 1_000_000_000:  # labels with milliseconds are wider: fewer of them, side by side
            step = tick_step_ns(self.span_ns, max_ticks=6)
        t = -(-self.t0 // step) * step
        out = []
        while t <= self.t1:
            out.append(Tick(self.x_of(t), clock(t, step < 1_000_000_000), relative(self.a, t)))
            t += step
        return out, step < 1_000_000_000


def _verdict_at(windows: list[Window], starts: list[int], ends: list[int], bucket: int) -> str:
    """The verdict of the window (of one window key) whose buckets hold ``bucket``, else of the nearest one."""
    if not windows:
        return V.UNKNOWN
    j = bisect_right(starts, bucket) - 1
    if j < 0:
        return windows[0].diagnosis
    if bucket > ends[j] and j + 1 < len(windows) and starts[j + 1] - bucket < bucket - ends[j]:
        return windows[j + 1].diagnosis
    return windows[j].diagnosis


def _row(i: int, w: Window) -> list[object]:
    return [i, f"{iso(w.start_ns)} .. {iso(w.end_ns)}", w.diagnosis,
            ", ".join(f"{p.diagnosis} {p.errors}" for p in w.history()), w.hint or w.fingerprint,
            f"{w.organization or '-'}/{w.project or '-'}", ", ".join(w.scopes), w.errors, w.successes_same_key,
            ", ".join(f"{c.id} ({c.origin})" for c in w.clients.values()),
            f"{len(w.processes)}/{w.processes_seen}", ", ".join(r for _, r in w.request_ids)]


def build(analysis: Analysis, max_columns: int = 120) -> Page:
    """The page's data."""
    b = _Builder(analysis, max_columns)
    a = analysis
    legend = [(V.meaning(d).colour, f"{d}: {V.meaning(d).legend}") for d in V.ALL]
    page = Page(totals={"calls": a.calls, "ok": a.calls_ok, "scope_errors": a.scope_errors,
                        "processes": len(a.processes), "clients": len(a.clients), "keys": len(a.keys),
                        "start": iso(a.start_ns), "end": iso(a.end_ns), "unreadable": a.unreadable_lines},
                warnings=list(a.warnings), legend=legend, t0=b.t0, t1=b.t1,
                step_label=f"{b.cols.per_column * a.bucket_seconds():.3g}s")
    page.key_charts, y = b.key_charts(68.0)
    procs = sorted(a.processes.values(), key=lambda p: (-p.total_errors, p.label))
    group, y = b.lane_group(f"Processes ({len(procs)})", "process-lane",
                            [(p.label[:34], p.id, p, None) for p in procs[:MAX_LANES]], y)
    page.lane_groups.append(group)
    clients = sorted(a.clients.values(), key=lambda c: (-c.errors.sum(), c.id))[:MAX_LANES]
    group, y = b.lane_group(f"Clients ({len(a.clients)})", "client-lane",
                            [(f"client {c.id}"[:34], f"{c.origin} in {c.process}", c, b.client_marker(c))
                             for c in clients], y)
    page.lane_groups.append(group)
    page.y_end = y
    page.bands = b.bands(y)
    page.ticks, page.tick_millis = b.ticks()
    page.rows = [_row(i, w) for i, w in enumerate(a.windows, 1)]
    page.sentences = verdict_lines(a)
    return page

