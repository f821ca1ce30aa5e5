"""Counts per time bucket with bounded memory, however long the telemetry spans.

All series share one :class:`Grid`: a bucket width (a power-of-two multiple of 1 ms) and the range of
bucket indexes seen. When the range grows past ``max_buckets`` the width doubles and every series merges
pairs of buckets, so memory depends on the number of series, never on the number of spans or the
duration. Spans may arrive in any order (many files, many processes).
"""

from __future__ import annotations

from array import array

BASE_WIDTH_NS = 1_000_000
DEFAULT_MAX_BUCKETS = 1024


class Series:
    """Counts on the grid's buckets, stored densely between the lowest and highest index it was given."""

    __slots__ = ("counts", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.counts = array("I")

    def add(self, index: int, n: int = 1) -> None:
        counts = self.counts
        j = index - self.offset
        if not counts:
            self.offset = index
            counts.append(n)
            return
        if j < 0:
            self.counts = counts = array("I", [0]) * (-j) + counts
            self.offset = index
            j = 0
        elif j >= len(counts):
            counts.extend(array("I", [0]) * (j - len(counts) + 1))
        counts[j] += n

    def total(self, lo: int, hi: int) -> int:
        """Sum of the buckets ``lo..hi`` (inclusive)."""
        a = max(0, lo - self.offset)
        b = min(len(self.counts), hi - self.offset + 1)
        return sum(self.counts[a:b]) if a < b else 0

    def get(self, index: int) -> int:
        j = index - self.offset
        return self.counts[j] if 0 <= j < len(self.counts) else 0

    def sum(self) -> int:
        return sum(self.counts)

    def halve(self) -> None:
        """Merge bucket pairs: index i becomes i >> 1 (the grid doubled its width)."""
        if not self.counts:
            return
        new_offset = self.offset >> 1
        last = (self.offset + len(self.counts) - 1) >> 1
        merged = array("I", [0]) * (last - new_offset + 1)
        for k, c in enumerate(self.counts):
            if c:
                merged[((self.offset + k) >> 1) - new_offset] += c
        self.offset = new_offset
        self.counts = merged

    def absorb(self, other: Series) -> None:
        for k, c in enumerate(other.counts):
            if c:
                self.add(other.offset + k, c)


class Grid:
    """The shared bucket width and the series living on it."""

    def __init__(self, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.max_buckets = max(2, max_buckets)
        self.width_ns = BASE_WIDTH_NS
        self.lo: int | None = None
        self.hi: int | None = None
        self._series: list[Series] = []

    def new_series(self) -> Series:
        s = Series()
        self._series.append(s)
        return s

    def drop(self, series: Series) -> None:
        """Forget a series merged into another (its counts live on there)."""
        try:
            self._series.remove(series)
        except ValueError:
            pass

    def index(self, t_ns: int) -> int:
        """The bucket of ``t_ns``, widening the grid first when it would exceed ``max_buckets``."""
        i = t_ns // self.width_ns
        lo, hi = self.lo, self.hi
        if lo is None or hi is None:
            self.lo = self.hi = i
            return i
        if i < lo:
            lo = i
        elif i > hi:
            hi = i
        else:
            return i
        while hi - lo + 1 > self.max_buckets:
            self.width_ns *= 2
            lo >>= 1
            hi >>= 1
            for s in self._series:
                s.halve()
        self.lo, self.hi = lo, hi
        return t_ns // self.width_ns

    def _double(self) -> None:
        self.width_ns *= 2
        if self.lo is not None and self.hi is not None:
            self.lo >>= 1
            self.hi >>= 1
        for s in self._series:
            s.halve()

    def take(self, other: Grid) -> None:
        """Adopt ``other``'s series (another part of the same input): both grids go to the width one grid
        would have reached with every span (the narrowest power of two fitting the joint range: widths only
        grow, and a wider range never fits a narrower width), so each count lands in the same bucket."""
        while self.width_ns < other.width_ns:
            self._double()
        while other.width_ns < self.width_ns:
            other._double()
        if other.lo is not None and other.hi is not None:
            self.lo = other.lo if self.lo is None else min(self.lo, other.lo)
            self.hi = other.hi if self.hi is None else max(self.hi, other.hi)
        self._series.extend(other._series)
        other._series = []
        while self.buckets() > self.max_buckets:
            self._double()

    def retain(self, series: list[Series]) -> None:
        """Keep exactly these series (after a merge folded the others into them)."""
        self._series = list(series)

    def bucket(self, t_ns: int) -> int:
        """The bucket of ``t_ns`` at the current width, without growing the grid."""
        return t_ns // self.width_ns

    def buckets(self) -> int:
        return 0 if self.lo is None or self.hi is None else self.hi - self.lo + 1
