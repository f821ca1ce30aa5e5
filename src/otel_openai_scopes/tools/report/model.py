"""What the report builds: lanes (per key, process and client) and windows (bursts of scope errors per key and set
of missing scopes, across processes), each counting on the shared time grid.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from dataclasses import dataclass, field

from ... import attributes as A
from ... import verdicts
from ..otlp_json import SpanRecord
from ..timegrid import Grid, Series
from . import limits as L
from .read import text, texts

#: What a window belongs to: (key fingerprint, missing scopes).
WindowKey = tuple[str, tuple[str, ...]]


@dataclass
class KeyLane:
    fingerprint: str
    hint: str
    ok: Series
    calls: int = 0
    passed: int = 0
    scope_errors: int = 0


@dataclass
class ErrorLane:
    """A lane with its ok calls and scope errors, the errors also per window key (to colour them by verdict)."""

    id: str
    ok: Series
    errors: Series
    by_window: dict[WindowKey, Series] = field(default_factory=dict)
    #: errors of more window keys than MAX_LANE_SETS were counted in ``errors`` only
    by_window_full: bool = False

    def add_error(self, key: WindowKey, index: int, grid: Grid) -> None:
        self.errors.add(index)
        series = self.by_window.get(key)
        if series is None:
            if len(self.by_window) >= L.MAX_LANE_SETS:
                self.by_window_full = True
                return
            series = self.by_window[key] = grid.new_series()
        series.add(index)

    def absorb(self, other: ErrorLane) -> None:
        """Take in another part's counts of the same lane (exact only while neither is full)."""
        self.ok.absorb(other.ok)
        self.errors.absorb(other.errors)
        for key, series in other.by_window.items():
            mine = self.by_window.get(key)
            if mine is not None:
                mine.absorb(series)
            elif len(self.by_window) < L.MAX_LANE_SETS:
                self.by_window[key] = series
            else:
                self.by_window_full = True
        self.by_window_full |= other.by_window_full

    def series(self) -> list[Series]:
        return [self.ok, self.errors, *self.by_window.values()]


@dataclass
class ProcessLane(ErrorLane):
    label: str = ""
    calls: Series = field(default_factory=Series)  # replaced by one on the grid (:meth:`on`)
    total_calls: int = 0
    total_errors: int = 0

    @classmethod
    def on(cls, grid: Grid, pid: str, label: str) -> ProcessLane:
        return cls(pid, grid.new_series(), grid.new_series(), label=label, calls=grid.new_series())

    def series(self) -> list[Series]:
        return [*super().series(), self.calls]


@dataclass
class ClientLane(ErrorLane):
    origin: str = ""
    process: str = ""
    mutated: set[str] = field(default_factory=set)
    mutated_first_ns: int = 0

    @classmethod
    def on(cls, grid: Grid, cid: str, origin: str, process: str) -> ClientLane:
        return cls(cid, grid.new_series(), grid.new_series(), origin=origin, process=process)


@dataclass
class WindowClient:
    id: str
    origin: str
    process: str
    errors: int = 0
    mutated: set[str] = field(default_factory=set)


@dataclass
class VerdictPhase:
    """One live verdict the processes gave inside a window: how often, first and last time."""

    diagnosis: str
    errors: int
    first_ns: int
    last_ns: int


@dataclass(eq=False)
class Window:
    """A burst of scope errors for one key and one set of missing scopes, across processes."""

    fingerprint: str
    scopes: tuple[str, ...]
    start_ns: int
    end_ns: int
    errors_series: Series
    hint: str = ""
    errors: int = 0
    live: Counter[str] = field(default_factory=Counter)
    live_first: dict[str, int] = field(default_factory=dict)
    live_last: dict[str, int] = field(default_factory=dict)
    process_diagnoses: dict[str, Counter[str]] = field(default_factory=dict)
    clients: dict[str, WindowClient] = field(default_factory=dict)
    client_ids: set[str] = field(default_factory=set)
    endpoints: Counter[str] = field(default_factory=Counter)
    mutated_errors: int = 0
    mutated_fields: Counter[str] = field(default_factory=Counter)
    request_ids: list[tuple[int, str]] = field(default_factory=list)
    # the fleet view, filled by evidence.finish()
    diagnosis: str = verdicts.UNKNOWN
    successes_same_key: int = 0
    successes_other_processes: int = 0
    processes_succeeding: int = 0
    processes_seen: int = 0
    other_clients_ok: int = 0
    other_clients_ok_calls: int = 0

    @property
    def key(self) -> WindowKey:
        return self.fingerprint, self.scopes

    @property
    def processes(self) -> set[str]:
        return set(self.process_diagnoses)

    def history(self) -> list[VerdictPhase]:
        return sorted((VerdictPhase(d, n, self.live_first[d], self.live_last[d]) for d, n in self.live.items()),
                      key=lambda p: (p.first_ns, p.diagnosis))

    def add(self, span: SpanRecord, process: str) -> None:
        self.errors += 1
        self.start_ns = min(self.start_ns, span.start_ns)
        self.end_ns = max(self.end_ns, span.end_ns)
        diagnosis = text(span.get(A.DIAGNOSIS)) or verdicts.UNKNOWN
        self.live[diagnosis] += 1
        if diagnosis not in self.live_first or span.start_ns < self.live_first[diagnosis]:
            self.live_first[diagnosis] = span.start_ns
        if span.start_ns > self.live_last.get(diagnosis, -1):
            self.live_last[diagnosis] = span.start_ns
        per_process = self.process_diagnoses.get(process)
        if per_process is None:
            per_process = self.process_diagnoses[process] = Counter()
        per_process[diagnosis] += 1
        mutated = texts(span.get(A.CLIENT_MUTATED))
        if mutated or diagnosis == verdicts.CLIENT_MUTATED:
            self.mutated_errors += 1
            self.mutated_fields.update(mutated)
        cid = text(span.get(A.CLIENT_ID))
        if len(self.client_ids) < L.MAX_COUNTED:
            self.client_ids.add(cid)
        client = self.clients.get(cid)
        if client is None and len(self.clients) < L.MAX_WINDOW_CLIENTS:
            client = self.clients[cid] = WindowClient(cid, text(span.get(A.CLIENT_ORIGIN)), process)
        if client is not None:
            client.errors += 1
            client.mutated.update(mutated)
        self.endpoints[f"{text(span.get(A.HTTP_METHOD))} {text(span.get(A.TEMPLATE))}"] += 1
        rid = span.get(A.REQUEST_ID)
        if rid:  # the earliest ones, whatever order the spans come in
            ids = self.request_ids
            entry = (span.start_ns, str(rid))
            if len(ids) < L.MAX_REQUEST_IDS or entry < ids[-1]:
                insort(ids, entry)
                del ids[L.MAX_REQUEST_IDS:]

    def absorb(self, other: Window) -> None:
        """Take in a window that a new error joined to this one."""
        self.errors += other.errors
        self.start_ns = min(self.start_ns, other.start_ns)
        self.end_ns = max(self.end_ns, other.end_ns)
        self.errors_series.absorb(other.errors_series)
        self.live.update(other.live)
        for d, t in other.live_first.items():
            self.live_first[d] = min(t, self.live_first.get(d, t))
        for d, t in other.live_last.items():
            self.live_last[d] = max(t, self.live_last.get(d, t))
        for p, c in other.process_diagnoses.items():
            self.process_diagnoses.setdefault(p, Counter()).update(c)
        for cid, oc in other.clients.items():
            mine = self.clients.get(cid)
            if mine is None:
                if len(self.clients) < L.MAX_WINDOW_CLIENTS:
                    self.clients[cid] = oc
            else:
                mine.errors += oc.errors
                mine.mutated |= oc.mutated
        self.client_ids |= set(list(other.client_ids)[: max(0, L.MAX_COUNTED - len(self.client_ids))])
        self.endpoints.update(other.endpoints)
        self.mutated_errors += other.mutated_errors
        self.mutated_fields.update(other.mutated_fields)
        self.request_ids = sorted(self.request_ids + other.request_ids)[:L.MAX_REQUEST_IDS]


class WindowSet:
    """The windows of one window key: disjoint, sorted by start; a new error joins every window it is within
    ``gap`` of (merging them), so the result does not depend on the order spans arrive in."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.windows: list[Window] = []

    def find(self, start_ns: int, end_ns: int, gap_ns: int) -> tuple[Window | None, list[Window]]:
        """The window the error [start, end] joins (None: a new one) and the windows merged into it."""
        i = bisect_right(self.starts, end_ns + gap_ns)
        j = i
        while j > 0 and self.windows[j - 1].end_ns + gap_ns >= start_ns:
            j -= 1
        if j == i:
            return None, []
        keep = self.windows[j]
        merged = self.windows[j + 1:i]
        for w in merged:
            keep.absorb(w)
        del self.windows[j + 1:i]
        del self.starts[j + 1:i]
        return keep, merged

    def insert(self, window: Window) -> None:
        i = bisect_right(self.starts, window.start_ns)
        self.starts.insert(i, window.start_ns)
        self.windows.insert(i, window)

    def refresh(self, window: Window) -> None:
        """Keep ``starts`` in step after ``window`` grew to the left."""
        i = next(k for k, w in enumerate(self.windows) if w is window)
        self.starts[i] = window.start_ns
