"""Windows: bursts of scope errors for one window key (the key tuple the live diagnosis joins on: fingerprint,
organization, project, host; and the set of missing scopes), across processes, with the processes' live verdicts
inside. Their number and the detail they keep (clients, processes, endpoints)
are bounded (:mod:`.limits`), whatever the file names.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from ... import attributes as A
from ... import verdicts as V
from ...scope_names import MAX_SCOPES
from ..otlp_decode import SpanRecord
from ..timegrid import Grid, Series
from . import limits as L
from .read import clip, field_names, scope_set, verdict_name

#: The credential tuple: (key fingerprint, organization, project, host), organization and project as sent.
KeyTuple = tuple[str, str, str, str]
#: What a window belongs to: (fingerprint, organization, project, host, missing scopes).
WindowKey = tuple[str, str, str, str, tuple[str, ...]]
#: Where errors go once MAX_WINDOWS windows exist and their key has none yet.
OVERFLOW: WindowKey = (L.OTHER, L.OTHER, L.OTHER, L.OTHER, (L.OTHER,))


def _count_names(counts: Counter[str], names: tuple[str, ...]) -> None:
    for name in names:
        if name in counts or len(counts) < L.MAX_NAMES:
            counts[name] += 1


@dataclass
class WindowClient:
    id: str
    origin: str
    process: str
    errors: int = 0
    mutated: set[str] = field(default_factory=set)


@dataclass
class Derived:
    """A failing client made by copy()/with_options() with credentials other than its parent's, whose parent's
    credentials passed the scope: what the sentence says about it."""

    client: str
    origin: str  # where the copy was made
    parent: str
    parent_origin: str
    changed: tuple[str, ...]
    parent_passed: int  # successes of the parent's credentials on these endpoints (look-back included)
    #: the parent made no call after the copy was made and the copy took over (a shared client rebound); else the
    #: parent kept working alongside it (an intentional per-tenant client)
    rebound: bool


@dataclass
class VerdictPhase:
    """One live verdict the processes gave inside a window: how often, first and last time."""

    diagnosis: str
    errors: int
    first_ns: int
    last_ns: int


@dataclass(eq=False)
class Window:
    """A burst of scope errors for one key tuple and one set of missing scopes, across processes."""

    fingerprint: str
    organization: str
    project: str
    host: str
    scopes: tuple[str, ...]
    start_ns: int
    end_ns: int
    errors_series: Series
    budget: L.Budget
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
    #: (organization, project) in which a process saw the same key pass (its live context_mismatch)
    live_contexts: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: errors per (token grant they came with (openai.scope.granted, as shown), whether it lacks a missing scope)
    grants: Counter[tuple[tuple[str, ...], bool]] = field(default_factory=Counter)
    grant_lacks: int = 0  # errors whose token grant lacks a missing scope
    # the fleet view, filled by evidence.finish()
    diagnosis: str = V.UNKNOWN
    successes_same_key: int = 0
    #: same key (fingerprint, host) successes on these endpoints with another (organization, project)
    other_contexts: Counter[tuple[str, str]] = field(default_factory=Counter)
    derived: list[Derived] = field(default_factory=list)
    successes_other_processes: int = 0
    processes_succeeding: int = 0
    processes_seen: int = 0
    other_clients_ok: int = 0
    other_clients_ok_calls: int = 0

    @property
    def key(self) -> WindowKey:
        return self.fingerprint, self.organization, self.project, self.host, self.scopes

    @property
    def key_tuple(self) -> KeyTuple:
        return self.fingerprint, self.organization, self.project, self.host

    @property
    def mixed(self) -> bool:
        """Past a cap, keys or contexts counted together: no success can be said to be of the same tuple."""
        return L.OTHER in self.key_tuple

    @property
    def processes(self) -> set[str]:
        return set(self.process_diagnoses)

    def history(self) -> list[VerdictPhase]:
        return sorted((VerdictPhase(d, n, self.live_first[d], self.live_last[d]) for d, n in self.live.items()),
                      key=lambda p: (p.first_ns, p.diagnosis))

    def detail(self) -> int:
        """Entries of detail held (what the shared budget counts)."""
        return len(self.client_ids) + len(self.clients) + len(self.process_diagnoses) + len(self.endpoints)

    def _room(self, entries: Collection[str], key: str, cap: int) -> bool:
        """Whether ``key`` is, or may become, one of ``entries`` (at most ``cap``, within the budget)."""
        return key in entries or (len(entries) < cap and self.budget.take())

    def add(self, span: SpanRecord, process: str, endpoint: str) -> None:
        self.errors += 1
        self.start_ns = min(self.start_ns, span.start_ns)
        self.end_ns = max(self.end_ns, span.end_ns)
        diagnosis = verdict_name(span.get(A.DIAGNOSIS), self.live)
        self.live[diagnosis] += 1
        if diagnosis not in self.live_first or span.start_ns < self.live_first[diagnosis]:
            self.live_first[diagnosis] = span.start_ns
        if span.start_ns > self.live_last.get(diagnosis, -1):
            self.live_last[diagnosis] = span.start_ns
        if not self._room(self.process_diagnoses, process, L.MAX_PROCESS_LANES + 1):
            process = L.OTHER
        self.process_diagnoses.setdefault(process, Counter())[diagnosis] += 1
        mutated = field_names(span.get(A.CLIENT_MUTATED))
        if mutated or diagnosis == V.CLIENT_MUTATED:
            self.mutated_errors += 1
            _count_names(self.mutated_fields, mutated)
        cid = clip(span.get(A.CLIENT_ID))
        if cid not in self.client_ids and len(self.client_ids) < L.MAX_COUNTED and self.budget.take():
            self.client_ids.add(cid)
        client = self.clients.get(cid)
        if client is None and len(self.clients) < L.MAX_WINDOW_CLIENTS and self.budget.take():
            client = self.clients[cid] = WindowClient(cid, clip(span.get(A.CLIENT_ORIGIN), L.MAX_LONG_TEXT), process)
        if client is not None:
            client.errors += 1
            client.mutated.update(mutated[:L.MAX_NAMES - len(client.mutated)])
        self.endpoints[endpoint if self._room(self.endpoints, endpoint, L.MAX_ENDPOINTS) else L.OTHER] += 1
        granted = span.get(A.SCOPE_GRANTED)
        if granted is not None:  # the token's own claims list its scopes
            full = scope_set(granted)
            lacks = any(s not in full for s in self.scopes)
            self.grant_lacks += lacks
            shown = (tuple(sorted(full))[:MAX_SCOPES], lacks)  # membership was judged on all of it
            if shown in self.grants or len(self.grants) < L.MAX_NAMES:
                self.grants[shown] += 1
        if diagnosis == V.CONTEXT_MISMATCH:
            context = (clip(span.get(A.DIAGNOSIS_LAST_SUCCESS_ORGANIZATION)),
                       clip(span.get(A.DIAGNOSIS_LAST_SUCCESS_PROJECT)))
            if context in self.live_contexts or len(self.live_contexts) < L.MAX_NAMES:
                self.live_contexts[context] += 1
        rid = span.get(A.REQUEST_ID)
        if rid:  # the earliest ones, whatever order the spans come in
            ids = self.request_ids
            entry = (span.start_ns, clip(rid))
            if len(ids) < L.MAX_REQUEST_IDS or entry < ids[-1]:
                insort(ids, entry)
                del ids[L.MAX_REQUEST_IDS:]

    def absorb(self, other: Window) -> None:
        """Take in a window that a new error joined to this one (of the same analysis: the budget spent on
        ``other``'s detail is given back and what is kept taken again)."""
        before = self.detail() + other.detail()
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
        for context, n in other.live_contexts.items():
            if context in self.live_contexts or len(self.live_contexts) < L.MAX_NAMES:
                self.live_contexts[context] += n
        for grant, n in other.grants.items():
            if grant in self.grants or len(self.grants) < L.MAX_NAMES:
                self.grants[grant] += n
        self.grant_lacks += other.grant_lacks
        self.budget.give(before - self.detail())


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

    def nearest(self, start_ns: int) -> Window:
        """The window closest to ``start_ns`` (there is one): where an error goes once windows are capped. An
        error more than ``gap`` from every window extends the nearest one towards itself, which stays more than
        ``gap`` from the others: the set stays disjoint and sorted."""
        i = bisect_right(self.starts, start_ns)
        candidates = self.windows[max(0, i - 1):i + 1]
        return min(candidates, key=lambda w: min(abs(w.start_ns - start_ns), abs(w.end_ns - start_ns)))

    def insert(self, window: Window) -> None:
        i = bisect_right(self.starts, window.start_ns)
        self.starts.insert(i, window.start_ns)
        self.windows.insert(i, window)

    def refresh(self, window: Window) -> None:
        """Keep ``starts`` in step after ``window`` grew to the left."""
        i = next(k for k, w in enumerate(self.windows) if w is window)
        self.starts[i] = window.start_ns


@dataclass
class WindowSets:
    """Every window, by window key, with the caps on their number and on the detail they keep."""

    sets: dict[WindowKey, WindowSet] = field(default_factory=dict)
    count: int = 0
    #: MAX_WINDOWS was reached: some errors joined the nearest window of their key, or the OVERFLOW window
    capped: bool = False
    budget: L.Budget = field(default_factory=lambda: L.Budget(L.MAX_WINDOW_DETAIL))

    def all(self) -> list[Window]:
        return [w for s in self.sets.values() for w in s.windows]

    def add(self, span: SpanRecord, key: WindowKey, hint: str, process: str, endpoint: str, grid: Grid,
            gap_ns: int) -> tuple[Window, WindowKey]:
        """File one scope error: the window it joined or opened, and the window key it went under."""
        wset = self.sets.get(key)
        if wset is None:
            if self.count >= L.MAX_WINDOWS:
                self.capped = True
                key = OVERFLOW
                wset = self.sets.get(key)
            if wset is None:
                wset = self.sets[key] = WindowSet()
        w, merged = wset.find(span.start_ns, span.end_ns, gap_ns)
        self.count -= len(merged)
        for m in merged:
            grid.drop(m.errors_series)
        if w is None and self.count >= L.MAX_WINDOWS and wset.windows:
            self.capped = True
            w = wset.nearest(span.start_ns)
        if w is None:
            fp, organization, project, host, scopes = key
            w = Window(fp, organization, project, host, scopes, span.start_ns, span.end_ns, grid.new_series(),
                       self.budget, hint=hint)
            w.add(span, process, endpoint)
            wset.insert(w)
            self.count += 1
        else:
            before = w.start_ns
            w.add(span, process, endpoint)
            if w.start_ns != before or merged:
                wset.refresh(w)
        return w, key

    def rebudget(self) -> bool:
        """After windows of another part joined these: one shared budget again, charged with what they hold.
        False when that is over the bound."""
        windows = self.all()
        self.budget.left = L.MAX_WINDOW_DETAIL - sum(w.detail() for w in windows)
        for w in windows:
            w.budget = self.budget
        return self.budget.left >= 0
