"""Lanes: what each key, process and client did over time, on the shared grid (the timeline's rows and the
evidence windows are weighed against)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..timegrid import Grid, Series
from . import limits as L
from .windows import KeyTuple, WindowKey

NEVER = 2**63  # a time after any call


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
    #: a copy()/with_options() client: its parent's id and the fields it was given different from the parent's
    parent: str = ""
    copy_changed: tuple[str, ...] = ()
    #: its first and last call, and the credentials it sent first (as built)
    first_ns: int = NEVER
    last_ns: int = -1
    key_tuple: KeyTuple | None = None

    @classmethod
    def on(cls, grid: Grid, cid: str, origin: str, process: str, parent: str = "",
           copy_changed: tuple[str, ...] = ()) -> ClientLane:
        return cls(cid, grid.new_series(), grid.new_series(), origin=origin, process=process, parent=parent,
                   copy_changed=copy_changed)

    def absorb_calls(self, other: ClientLane) -> None:
        """Another part's first and last calls of the same client (the earliest call's credentials win)."""
        if other.first_ns < self.first_ns:
            self.first_ns, self.key_tuple = other.first_ns, other.key_tuple
        self.last_ns = max(self.last_ns, other.last_ns)

    def mark_mutated(self, fields: tuple[str, ...], start_ns: int) -> None:
        """The client sent with changed fields at ``start_ns`` (the first time is kept; at most MAX_NAMES)."""
        if not self.mutated or start_ns < self.mutated_first_ns:
            self.mutated_first_ns = start_ns
        for name in fields:
            if len(self.mutated) < L.MAX_NAMES:
                self.mutated.add(name)
