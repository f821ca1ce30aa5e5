"""Time as the report shows it: UTC clock and ISO times, time relative to the first call, and the grid's buckets
regrouped into display columns (terminal sparklines, HTML bars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..timegrid import Series

if TYPE_CHECKING:
    from .fold import Analysis


def iso(ns: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-12-01T09:12:03.250Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return (datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{rest // 1_000_000:03d}Z")


def clock(ns: int, millis: bool = False) -> str:
    text = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%H:%M:%S")
    return text + f".{ns % 1_000_000_000 // 1_000_000:03d}" if millis else text


def relative(analysis: Analysis, ns: int) -> str:
    s = (ns - analysis.start_ns) / 1e9
    if -0.05 < s < 0:  # a bucket edge just before the first call
        s = 0.0
    if abs(s) < 120:
        return f"{s:+.1f}s"
    if abs(s) < 7200:
        return f"{s / 60:+.1f}min"
    return f"{s / 3600:+.1f}h"


def when(analysis: Analysis, start_ns: int, end_ns: int) -> str:
    """``09:12:03Z +1.5s .. +20.0s``."""
    return f"{clock(start_ns)}Z {relative(analysis, start_ns)} .. {relative(analysis, end_ns)}"


@dataclass
class Columns:
    """The grid's buckets regrouped into at most ``n`` display columns."""

    lo: int  # first grid bucket
    per_column: int  # grid buckets per column
    n: int
    width_ns: int

    def start_ns(self, col: int) -> int:
        return (self.lo + col * self.per_column) * self.width_ns

    def of_bucket(self, bucket: int) -> int:
        return (bucket - self.lo) // self.per_column

    def of(self, series: Series) -> list[int]:
        out = [0] * self.n
        for k, c in enumerate(series.counts):
            if c:
                col = (series.offset + k - self.lo) // self.per_column
                if 0 <= col < self.n:
                    out[col] += c
        return out


def columns(analysis: Analysis, max_columns: int) -> Columns:
    g = analysis.grid
    lo = g.lo if g.lo is not None else 0
    total = max(1, g.buckets())
    per = max(1, math.ceil(total / max_columns))
    return Columns(lo, per, max(1, math.ceil(total / per)), g.width_ns)


_NICE_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
                 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def tick_step_ns(span_ns: int, max_ticks: int = 10) -> int:
    """A round tick interval giving at most ``max_ticks`` ticks over ``span_ns``."""
    for step in _NICE_STEPS_S:
        if span_ns / (step * 1e9) <= max_ticks:
            return int(step * 1e9)
    return int(math.ceil(span_ns / max_ticks / 86400e9) * 86400e9)
