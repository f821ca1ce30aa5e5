"""Incident report from exported telemetry: scope-error windows with a fleet-wide verdict.

Reads OTLP JSON lines (our ``openai_scopes_file`` exporter, the demo, a Collector ``file`` exporter; plain or
gzip) from one or many processes, in one streaming pass whose memory depends on windows, keys, clients and
processes, never on the number of spans, and answers what one process cannot:

* one window per key and set of missing scopes (errors closer than ``gap`` seconds), across every process,
  with the processes' own live verdicts kept inside as history;
* a fleet verdict per window (:func:`fleet_verdict`): same-key successes on the same endpoints anywhere in
  the fleet during the window make it platform-side even where a process, with no success of its own,
  said ``unknown`` or ``never_granted``; a key that failed everywhere stays ``never_granted``; errors from
  mutated clients stay the app's fault;
* sentences that claim only the evidence counted (:func:`explanation`).

Exit codes of ``report``: 0 no scope error found, 1 scope errors found, 2 nothing readable or a usage error.
"""

from __future__ import annotations

import gc
import html
import json
import math
import os
import pickle
import threading
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import attributes as A
from .. import verdicts
from .otlp_json import FileStats, SpanReader, SpanRecord, file_warnings, process_label, split_points
from .terminal import widen_when_piped
from .timegrid import DEFAULT_MAX_BUCKETS, Grid, Series

EXIT_CLEAR = 0
EXIT_SCOPE_ERRORS = 1
EXIT_UNREADABLE = 2

SCHEMA = "otel-openai-scopes/report/1"

#: Span attributes the report reads for every span; the others (the error's details, a new client's origin, a new
#: endpoint's scopes) are converted only when needed (``SpanRecord.get``).
READ_ATTRIBUTES = frozenset({
    A.TEMPLATE, A.HTTP_METHOD, A.HTTP_STATUS, A.KEY_FINGERPRINT, A.SCOPE_ERROR, A.CLIENT_ID, A.CLIENT_MUTATED,
})

MAX_CLIENT_LANES = 200
MAX_WINDOW_CLIENTS = MAX_CLIENT_LANES  # clients described per window (all are counted up to MAX_COUNTED); as many
# as client lanes, so that a part of a fleet file (parallel reading) reaches it only when the lanes are full anyway
MAX_COUNTED = 10_000
MAX_REQUEST_IDS = 10
MAX_PROCESS_LANES = 1000
MAX_KEYS = 1000
OTHER = "(other)"

VERDICT_COLOUR = {v: m.colour for v, m in verdicts.MEANINGS.items()}
OK_COLOUR = verdicts.OK_COLOUR
VERDICT_MEANING = {v: m.legend for v, m in verdicts.MEANINGS.items()}


# ---- lanes: one per key, process and client ------------------------------------------------------------
@dataclass
class KeyLane:
    fingerprint: str
    hint: str
    ok: Series
    calls: int = 0
    passed: int = 0
    scope_errors: int = 0


@dataclass
class ProcessLane:
    id: str
    label: str
    ok: Series
    errors: Series
    calls: Series
    total_calls: int = 0
    total_errors: int = 0


@dataclass
class ClientLane:
    id: str
    origin: str
    process: str
    ok: Series
    errors: Series
    mutated: set[str] = field(default_factory=set)
    mutated_first_ns: int = 0


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


def _text(value: Any) -> str:
    """An attribute as a string ("" when absent): telemetry files may hold any type anywhere."""
    if type(value) is str:
        return value
    return "" if value is None else str(value)


def _endpoint(text: str) -> tuple[str, str]:
    method, _, template = text.partition(" ")
    return method, template


def _texts(value: Any) -> tuple[str, ...]:
    """A string-array attribute as a tuple of strings (a lone string counts as one)."""
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(_text(v) for v in value)
    return (_text(value),)


# ---- windows -----------------------------------------------------------------------------------------------
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
    # the fleet view, filled by finish()
    diagnosis: str = A.DIAGNOSIS_UNKNOWN
    successes_same_key: int = 0
    successes_other_processes: int = 0
    processes_succeeding: int = 0
    processes_seen: int = 0
    other_clients_ok: int = 0
    other_clients_ok_calls: int = 0

    @property
    def processes(self) -> set[str]:
        return set(self.process_diagnoses)

    def history(self) -> list[VerdictPhase]:
        return sorted((VerdictPhase(d, n, self.live_first[d], self.live_last[d]) for d, n in self.live.items()),
                      key=lambda p: (p.first_ns, p.diagnosis))

    def add(self, span: SpanRecord, process: str) -> None:
        a = span
        self.errors += 1
        self.start_ns = min(self.start_ns, span.start_ns)
        self.end_ns = max(self.end_ns, span.end_ns)
        diagnosis = _text(a.get(A.DIAGNOSIS)) or A.DIAGNOSIS_UNKNOWN
        self.live[diagnosis] += 1
        if diagnosis not in self.live_first or span.start_ns < self.live_first[diagnosis]:
            self.live_first[diagnosis] = span.start_ns
        if span.start_ns > self.live_last.get(diagnosis, -1):
            self.live_last[diagnosis] = span.start_ns
        per_process = self.process_diagnoses.get(process)
        if per_process is None:
            per_process = self.process_diagnoses[process] = Counter()
        per_process[diagnosis] += 1
        mutated = _texts(a.get(A.CLIENT_MUTATED))
        if mutated or diagnosis == A.DIAGNOSIS_CLIENT_MUTATED:
            self.mutated_errors += 1
            self.mutated_fields.update(mutated)
        cid = _text(a.get(A.CLIENT_ID))
        if len(self.client_ids) < MAX_COUNTED:
            self.client_ids.add(cid)
        client = self.clients.get(cid)
        if client is None and len(self.clients) < MAX_WINDOW_CLIENTS:
            client = self.clients[cid] = WindowClient(cid, _text(a.get(A.CLIENT_ORIGIN)), process)
        if client is not None:
            client.errors += 1
            client.mutated.update(mutated)
        self.endpoints[f"{_text(a.get(A.HTTP_METHOD))} {_text(a.get(A.TEMPLATE))}"] += 1
        rid = a.get(A.REQUEST_ID)
        if rid:  # the earliest ones, whatever order the spans come in
            ids = self.request_ids
            entry = (span.start_ns, str(rid))
            if len(ids) < MAX_REQUEST_IDS or entry < ids[-1]:
                insort(ids, entry)
                del ids[MAX_REQUEST_IDS:]

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
                if len(self.clients) < MAX_WINDOW_CLIENTS:
                    self.clients[cid] = oc
            else:
                mine.errors += oc.errors
                mine.mutated |= oc.mutated
        self.client_ids |= set(list(other.client_ids)[: max(0, MAX_COUNTED - len(self.client_ids))])
        self.endpoints.update(other.endpoints)
        self.mutated_errors += other.mutated_errors
        self.mutated_fields.update(other.mutated_fields)
        self.request_ids = sorted(self.request_ids + other.request_ids)[:MAX_REQUEST_IDS]


class WindowSet:
    """The windows of one (key, scopes): disjoint, sorted by start; a new error joins every window it is
    within ``gap`` of (merging them), so the result does not depend on the order spans arrive in."""

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


# ---- the fleet verdict (pure) ----------------------------------------------------------------------------
def fleet_verdict(errors: int, mutated_errors: int, successes_same_key: int, live: dict[str, int]) -> str:
    """The window's verdict from the whole fleet's evidence.

    Errors all from mutated clients: ``client_mutated`` (the app). Otherwise a same-key success on the
    same endpoints during the window, or a process that saw one shortly before (its live
    ``scope_flapping``): ``scope_flapping``. Otherwise, with no success anywhere, ``never_granted`` once a
    process said so or 3 errors are in; fewer: ``unknown``.
    """
    if errors and mutated_errors >= errors:
        return A.DIAGNOSIS_CLIENT_MUTATED
    if successes_same_key > 0 or live.get(A.DIAGNOSIS_SCOPE_FLAPPING, 0) > 0:
        return A.DIAGNOSIS_SCOPE_FLAPPING
    if live.get(A.DIAGNOSIS_NEVER_GRANTED, 0) > 0 or errors - mutated_errors >= 3:
        return A.DIAGNOSIS_NEVER_GRANTED
    return A.DIAGNOSIS_UNKNOWN


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


def explanation(w: Window) -> str:
    """What the verdict means, citing only the evidence counted for this window."""
    d = w.diagnosis
    flipped = sum(1 for c in w.process_diagnoses.values()
                  if d not in c and (A.DIAGNOSIS_UNKNOWN in c or A.DIAGNOSIS_NEVER_GRANTED in c))
    if d == A.DIAGNOSIS_CLIENT_MUTATED:
        fields = ", ".join(f for f, _ in w.mutated_fields.most_common()) or "credentials"
        text = (f"your app: the failing client sends a different {fields} from the one it was built with "
                "(openai.client.mutated).")
        if w.other_clients_ok:
            text += (f" Other clients kept working: {_plural(w.other_clients_ok_calls, 'successful call')} from "
                     f"{_plural(w.other_clients_ok, 'other client')} meanwhile.")
        else:
            text += " No other client made a successful call meanwhile."
        return text + (" Look for code that changes api_key/organization/project on a shared client (e.g. a task "
                       "that swaps it and dies before restoring it).")
    if d == A.DIAGNOSIS_SCOPE_FLAPPING:
        if w.successes_same_key:
            text = (f"platform-side: the same key passed the scope check on these endpoints "
                    f"{_plural(w.successes_same_key, 'time')} during the window")
            if w.successes_other_processes:
                text += (f", {w.successes_other_processes} of them in "
                         f"{_plural(w.processes_succeeding, 'other process')}")
            text += ", while it failed here."
        else:
            text = ("platform-side: a process saw the same key pass the scope check shortly before it failed "
                    "(its own verdict: scope_flapping).")
        if flipped:
            text += (f" {_plural(flipped, 'process')} with no success of its own said unknown/never_granted; "
                     "the fleet's successes overrule that.")
        text += (" Not your code (or a permission change still propagating, up to 15-30 min): keep the request ids "
                 "for OpenAI support.")
        if w.mutated_errors:
            text += f" {_plural(w.mutated_errors, 'error')} came from mutated clients (your app)."
        return text
    if d == A.DIAGNOSIS_NEVER_GRANTED:
        text = (f"configuration: the key never passed the scope check on these endpoints in any of the "
                f"{_plural(w.processes_seen, 'process')} seen during the window: a restricted key without the "
                "scope, or the key owner's project role lacks the permission.")
        if w.mutated_errors:
            text += f" {_plural(w.mutated_errors, 'error')} came from mutated clients (your app)."
        return text
    return (f"not enough evidence: {_plural(w.errors, 'error')}, no success of the key on these endpoints anywhere, "
            "too few failures to call it never granted.")


# ---- the analysis -----------------------------------------------------------------------------------------
@dataclass
class Analysis:
    """Everything the report prints: totals, windows with fleet verdicts, lanes for the timeline."""

    grid: Grid
    gap_ns: int
    spans: int = 0  # spans read (any instrumentation)
    calls: int = 0  # OpenAI calls (spans of this instrumentation)
    calls_ok: int = 0  # 2xx/3xx
    scope_errors: int = 0
    start_ns: int = 0
    end_ns: int = 0
    windows: list[Window] = field(default_factory=list)
    keys: dict[str, KeyLane] = field(default_factory=dict)
    processes: dict[str, ProcessLane] = field(default_factory=dict)
    clients: dict[str, ClientLane] = field(default_factory=dict)
    files: list[Any] = field(default_factory=list)  # otlp_json.FileStats
    warnings: list[str] = field(default_factory=list)
    # (fingerprint, (method, template), process) -> calls that passed the scope check
    passed: dict[tuple[str, tuple[str, str], str], Series] = field(default_factory=dict)
    endpoint_scopes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _sets: dict[tuple[str, tuple[str, ...]], WindowSet] = field(default_factory=dict)

    @property
    def unreadable_lines(self) -> int:
        return sum(f.unreadable for f in self.files)

    @property
    def key_hints(self) -> dict[str, str]:
        return {fp: k.hint for fp, k in self.keys.items()}

    def diagnoses(self) -> Counter[str]:
        """Scope errors per fleet verdict."""
        out: Counter[str] = Counter()
        for w in self.windows:
            out[w.diagnosis] += w.errors
        return out

    def bucket_seconds(self) -> float:
        return self.grid.width_ns / 1e9

    # -- one span ----------------------------------------------------------------------------------
    def _process(self, span: SpanRecord) -> ProcessLane:
        pid = span.process
        lane = self.processes.get(pid)
        if lane is None:
            if len(self.processes) >= MAX_PROCESS_LANES:
                pid = OTHER
                lane = self.processes.get(pid)
            if lane is None:
                g = self.grid
                label = process_label(span.resource, span.source) if pid != OTHER else "(more processes)"
                lane = self.processes[pid] = ProcessLane(pid, label, g.new_series(), g.new_series(), g.new_series())
        return lane

    def _key(self, fp: str) -> KeyLane:
        lane = self.keys.get(fp)
        if lane is None:
            if len(self.keys) >= MAX_KEYS:
                fp = OTHER
                lane = self.keys.get(fp)
            if lane is None:
                lane = self.keys[fp] = KeyLane(fp, "", self.grid.new_series())
        return lane

    def _client(self, cid: str, span: SpanRecord, process: str) -> ClientLane:
        lane = self.clients.get(cid)
        if lane is None:
            if len(self.clients) >= MAX_CLIENT_LANES:
                cid = OTHER
                lane = self.clients.get(cid)
            if lane is None:
                g = self.grid
                lane = self.clients[cid] = ClientLane(cid, _text(span.get(A.CLIENT_ORIGIN)) if cid != OTHER else "",
                                                      process if cid != OTHER else "", g.new_series(), g.new_series())
        return lane

    def add(self, span: SpanRecord) -> None:
        """Fold one span in (the hot path of a report: a few dict look-ups and counter increments)."""
        self.spans += 1
        a = span.attributes
        get = a.get
        template = get(A.TEMPLATE)
        method = get(A.HTTP_METHOD)
        if template is None or method is None:
            return
        self.calls += 1
        start = span.start_ns
        if self.calls == 1 or start < self.start_ns:
            self.start_ns = start
        if span.end_ns > self.end_ns:
            self.end_ns = span.end_ns
        i = self.grid.index(start)
        fp = _text(get(A.KEY_FINGERPRINT))
        key = self.keys.get(fp) or self._key(fp)
        key.calls += 1
        if not key.hint:
            key.hint = _text(span.get(A.KEY_HINT))
        process = self.processes.get(span.process) or self._process(span)
        process.calls.add(i)
        process.total_calls += 1
        cid = _text(get(A.CLIENT_ID))
        client = self.clients.get(cid) or self._client(cid, span, process.id)
        mutated = get(A.CLIENT_MUTATED)
        if mutated:
            if not client.mutated or start < client.mutated_first_ns:
                client.mutated_first_ns = start
            client.mutated.update(_texts(mutated))
        if get(A.SCOPE_ERROR) is True:
            self.scope_errors += 1
            key.scope_errors += 1
            process.errors.add(i)
            process.total_errors += 1
            client.errors.add(i)
            self._window(span, fp, key.hint, process.id, i)
            return
        code = get(A.HTTP_STATUS)
        if type(code) is not int:
            try:
                code = int(code or 0)
            except (TypeError, ValueError):
                code = 0
        if 200 <= code < 400:
            self.calls_ok += 1
            key.ok.add(i)
            process.ok.add(i)
            client.ok.add(i)
        elif code != 404:  # 404: the server looked the object up, so the scope check passed
            return
        key.passed += 1
        endpoint = (_text(method), _text(template))
        series = self.passed.get((key.fingerprint, endpoint, process.id))
        if series is None:
            series = self.passed[(key.fingerprint, endpoint, process.id)] = self.grid.new_series()
            if endpoint not in self.endpoint_scopes:
                self.endpoint_scopes[endpoint] = set(_texts(span.get(A.SCOPE_REQUIRED)))
        series.add(i)

    def _window(self, span: SpanRecord, fp: str, hint: str, process: str, i: int) -> None:
        scopes = tuple(sorted(set(_texts(span.get(A.SCOPE_MISSING)))))
        wset = self._sets.get((fp, scopes))
        if wset is None:
            wset = self._sets[(fp, scopes)] = WindowSet()
        w, merged = wset.find(span.start_ns, span.end_ns, self.gap_ns)
        for m in merged:
            self.grid.drop(m.errors_series)
        if w is None:
            w = Window(fp, scopes, span.start_ns, span.end_ns, self.grid.new_series(), hint=hint)
            w.add(span, process)
            wset.insert(w)
        else:
            before = w.start_ns
            w.add(span, process)
            if w.start_ns != before or merged:
                wset.refresh(w)
        w.errors_series.add(i)

    # -- the fleet view --------------------------------------------------------------------------------
    def finish(self) -> Analysis:
        self.windows = sorted((w for s in self._sets.values() for w in s.windows),
                              key=lambda w: (w.start_ns, w.fingerprint, w.scopes))
        g = self.grid
        by_key: dict[str, list[tuple[tuple[str, str], str, Series]]] = {}
        for (fp, endpoint, proc), series in self.passed.items():
            by_key.setdefault(fp, []).append((endpoint, proc, series))
        for w in self.windows:
            lo, hi = g.bucket(w.start_ns), g.bucket(w.end_ns)
            failing = w.processes
            endpoints = {_endpoint(e) for e in w.endpoints}
            wanted = set(w.scopes)
            if wanted:
                endpoints |= {e for e, scopes in self.endpoint_scopes.items() if scopes & wanted}
            succeeding: set[str] = set()
            total = other = 0
            for endpoint, proc, series in by_key.get(w.fingerprint, ()):
                if endpoint not in endpoints:
                    continue
                n = series.total(lo, hi)
                if n:
                    total += n
                    if proc not in failing:
                        other += n
                        succeeding.add(proc)
            w.successes_same_key, w.successes_other_processes, w.processes_succeeding = total, other, len(succeeding)
            w.processes_seen = sum(1 for p in self.processes.values() if p.calls.total(lo, hi))
            ok_clients = [c.ok.total(lo, hi) for cid, c in self.clients.items() if cid not in w.client_ids]
            w.other_clients_ok = sum(1 for n in ok_clients if n)
            w.other_clients_ok_calls = sum(ok_clients)
            w.diagnosis = fleet_verdict(w.errors, w.mutated_errors, w.successes_same_key, w.live)
            self._settle(w)
        return self

    def _settle(self, w: Window) -> None:
        """What a window shows, independent of the order its spans came in: the key's hint, each client's origin
        and process from its lane (its first span), ties in counts by name, most failing client first."""
        key = self.keys.get(w.fingerprint)
        if key is not None and key.hint:
            w.hint = key.hint
        for cid, c in w.clients.items():
            lane = self.clients.get(cid)
            if lane is not None:
                c.origin, c.process = lane.origin, lane.process
        w.clients = dict(sorted(w.clients.items(), key=lambda kv: (-kv[1].errors, kv[0])))
        w.endpoints = Counter(dict(sorted(w.endpoints.items(), key=lambda kv: (-kv[1], kv[0]))))
        w.mutated_fields = Counter(dict(sorted(w.mutated_fields.items(), key=lambda kv: (-kv[1], kv[0]))))
        w.process_diagnoses = {p: Counter(dict(sorted(c.items()))) for p, c in sorted(w.process_diagnoses.items())}

    # -- parts of one input, read in parallel ------------------------------------------------------------
    def exact(self) -> bool:
        """No lane or window cap reached: every count is its own, so parts of the input merge exactly."""
        return (len(self.keys) <= MAX_KEYS and len(self.processes) <= MAX_PROCESS_LANES
                and len(self.clients) <= MAX_CLIENT_LANES
                and OTHER not in self.keys and OTHER not in self.processes and OTHER not in self.clients
                and all(len(w.client_ids) <= MAX_WINDOW_CLIENTS and len(w.clients) == len(w.client_ids)
                        for ws in self._sets.values() for w in ws.windows))

    def merge(self, other: Analysis) -> bool:
        """Fold in the (unfinished) state of the spans that come right after this one's, as if they had been
        added one by one after them. False when that cannot be guaranteed (a cap reached in a part or by the
        union: which spans fall into "(other)" depends on the order): the caller then reads in one pass.
        First-seen values (hints, origins, labels, required scopes) come from the earlier part, as they would."""
        if not (self.exact() and other.exact()) or self.gap_ns != other.gap_ns \
                or self.grid.max_buckets != other.grid.max_buckets:
            return False
        self.grid.take(other.grid)
        if other.calls:
            self.start_ns = other.start_ns if not self.calls else min(self.start_ns, other.start_ns)
            self.end_ns = max(self.end_ns, other.end_ns)
        self.spans += other.spans
        self.calls += other.calls
        self.calls_ok += other.calls_ok
        self.scope_errors += other.scope_errors
        for fp, ok in other.keys.items():
            mine = self.keys.get(fp)
            if mine is None:
                self.keys[fp] = ok
                continue
            mine.hint = mine.hint or ok.hint
            mine.ok.absorb(ok.ok)
            mine.calls += ok.calls
            mine.passed += ok.passed
            mine.scope_errors += ok.scope_errors
        for pid, op in other.processes.items():
            mp = self.processes.get(pid)
            if mp is None:
                self.processes[pid] = op
                continue
            for a, b in ((mp.ok, op.ok), (mp.errors, op.errors), (mp.calls, op.calls)):
                a.absorb(b)
            mp.total_calls += op.total_calls
            mp.total_errors += op.total_errors
        for cid, oc in other.clients.items():
            mc = self.clients.get(cid)
            if mc is None:
                self.clients[cid] = oc
                continue
            for a, b in ((mc.ok, oc.ok), (mc.errors, oc.errors)):
                a.absorb(b)
            if oc.mutated:
                mc.mutated_first_ns = oc.mutated_first_ns if not mc.mutated else min(mc.mutated_first_ns,
                                                                                      oc.mutated_first_ns)
                mc.mutated |= oc.mutated
        for pk, series in other.passed.items():
            mine_s = self.passed.get(pk)
            if mine_s is None:
                self.passed[pk] = series
            else:
                mine_s.absorb(series)
        for endpoint, scopes in other.endpoint_scopes.items():
            self.endpoint_scopes.setdefault(endpoint, scopes)
        for wk, oset in other._sets.items():
            wset = self._sets.get(wk)
            if wset is None:
                self._sets[wk] = oset
                continue
            for window in oset.windows:  # disjoint and more than gap apart, like wset's: each joins what it touches
                w, _ = wset.find(window.start_ns, window.end_ns, self.gap_ns)
                if w is None:
                    wset.insert(window)
                else:
                    w.absorb(window)
                    wset.refresh(w)
        self.files = _merge_files(self.files + other.files)
        self.grid.retain(self._series_in_use())  # what was absorbed above lives on in the series it went into
        return self.exact()

    def _series_in_use(self) -> list[Series]:
        out: list[Series] = [k.ok for k in self.keys.values()]
        for p in self.processes.values():
            out += (p.ok, p.errors, p.calls)
        for c in self.clients.values():
            out += (c.ok, c.errors)
        out += self.passed.values()
        out += (w.errors_series for ws in self._sets.values() for w in ws.windows)
        return out


def _merge_files(files: list[Any]) -> list[Any]:
    """Per-file counts of byte ranges of the same file, summed (in first-seen order)."""
    out: dict[str, FileStats] = {}
    for f in files:
        mine = out.get(f.path)
        if mine is None:
            out[f.path] = mine = FileStats(f.path, f.compression)
        mine.lines += f.lines
        mine.spans += f.spans
        mine.other_signals += f.other_signals
        mine.unreadable += f.unreadable
        mine.reasons.update(f.reasons)
    return list(out.values())


def analyze(spans: Iterable[SpanRecord], gap_seconds: float = 60.0,
            max_buckets: int = DEFAULT_MAX_BUCKETS) -> Analysis:
    return _fold(spans, gap_seconds, max_buckets).finish()


def _fold(spans: Iterable[SpanRecord], gap_seconds: float, max_buckets: int) -> Analysis:
    analysis = Analysis(Grid(max_buckets), int(gap_seconds * 1e9))
    add = analysis.add
    for span in spans:
        add(span)
    return analysis


#: A single plain file at least this big is read by several processes, each its own byte range.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def analyze_files(paths: Sequence[str | Path], gap_seconds: float = 60.0,
                  max_buckets: int = DEFAULT_MAX_BUCKETS, workers: int | None = None,
                  parallel_min_bytes: int = PARALLEL_MIN_BYTES) -> Analysis:
    """Stream the files through :func:`analyze`. Raises ``otlp_json.UnreadableFile`` for a file that
    cannot be opened; per-file counts of read and unreadable lines end up in ``files`` and ``warnings``.

    One plain (not gzip) file of ``parallel_min_bytes`` or more is cut at line boundaries into ``workers``
    byte ranges (default: 2 when 2 CPUs are usable and this process runs one thread, since a fork could copy
    a lock another thread holds) decoded by forked processes; their states merge into exactly what one pass
    gives (:meth:`Analysis.merge`), else the file is read in one pass after all."""
    # The stream allocates millions of short-lived containers and creates no cycles: the cyclic collector
    # would only rescan them (a third of the run time), so it pauses for the pass.
    collecting = gc.isenabled()
    gc.disable()
    try:
        analysis = None
        if workers is None:
            n = min(2, _cpus()) if threading.active_count() == 1 else 1
        else:
            n = workers
        if n > 1 and len(paths) == 1 and hasattr(os, "fork"):
            analysis = _parallel(Path(paths[0]), n, gap_seconds, max_buckets, parallel_min_bytes)
        if analysis is None:
            reader = SpanReader(paths, READ_ATTRIBUTES)
            analysis = _fold(reader, gap_seconds, max_buckets)
            analysis.files = reader.files
        analysis.finish()
    finally:
        if collecting:
            gc.enable()
    analysis.warnings = file_warnings(analysis.files)
    return analysis


def _fold_range(path: Path, start: int, end: int, gap_seconds: float, max_buckets: int) -> Analysis:
    reader = SpanReader([path], READ_ATTRIBUTES, byte_range=(start, end))
    part = _fold(reader, gap_seconds, max_buckets)
    part.files = reader.files
    return part


def _parallel(path: Path, workers: int, gap_seconds: float, max_buckets: int, min_bytes: int) -> Analysis | None:
    """The file's analysis from ``workers`` byte ranges (the first read here, the others in forked children),
    or None: not a large plain file, no line boundary to cut at, nothing read, or a merge that would not be
    exact."""
    try:
        with open(path, "rb") as f:
            plain = f.read(2) != b"\x1f\x8b"
        if not plain or path.stat().st_size < min_bytes:
            return None
        points = split_points(path, workers)
    except OSError:
        return None
    if len(points) < 3:
        return None
    children = [_fork_part(path, a, b, gap_seconds, max_buckets) for a, b in zip(points[1:-1], points[2:])]
    analysis = _fold_range(path, points[0], points[1], gap_seconds, max_buckets)
    exact = True
    for (a, b), child in zip(zip(points[1:-1], points[2:]), children):
        part = _collect(child)
        if part is None:  # the child failed: read its range here
            part = _fold_range(path, a, b, gap_seconds, max_buckets)
        exact = exact and analysis.merge(part)
    if not exact or not analysis.calls:
        return None  # "nothing readable" needs the whole file's first bytes to say why
    return analysis


def _fork_part(path: Path, start: int, end: int, gap_seconds: float, max_buckets: int) -> tuple[int, int] | None:
    """(pid, read end of a pipe) of a child folding bytes [start, end) and writing its pickled state."""
    try:
        r, w = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            os.close(r)
            data = pickle.dumps(_fold_range(path, start, end, gap_seconds, max_buckets), pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(child: tuple[int, int] | None) -> Analysis | None:
    if child is None:
        return None
    pid, r = child
    chunks = []
    with os.fdopen(r, "rb") as pipe:
        while True:
            chunk = pipe.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        return None
    try:
        part = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - a damaged state is read again here, never trusted
        return None
    return part if isinstance(part, Analysis) else None


def nothing_readable(analysis: Analysis) -> str | None:
    """One line saying why there is nothing to analyse, or None. Never an all-clear for a file we could
    not read: no span at all, or spans but none from this instrumentation."""
    if analysis.calls:
        return None
    if not analysis.spans:
        why = "; ".join(f"{f.path}: {f.problem or 'no spans'}" for f in analysis.files) or "no input"
        return f"nothing readable: {why}"
    return (f"read {_plural(analysis.spans, 'span')} but no OpenAI call recorded by otel-openai-scopes "
            "(is the openai_scopes instrumentation enabled in the app?)")


def exit_code(analysis: Analysis) -> int:
    if nothing_readable(analysis) is not None:
        return EXIT_UNREADABLE
    return EXIT_SCOPE_ERRORS if analysis.scope_errors else EXIT_CLEAR


# ---- time formatting --------------------------------------------------------------------------------------
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


def _when(analysis: Analysis, w: Window) -> str:
    return f"{clock(w.start_ns)}Z {relative(analysis, w.start_ns)} .. {relative(analysis, w.end_ns)}"


# ---- sentences ---------------------------------------------------------------------------------------------
def verdict_lines(analysis: Analysis) -> list[str]:
    """Plain-language sentences, one per window: what failed, when, across how much of the fleet, and why."""
    lines = []
    for i, w in enumerate(analysis.windows, 1):
        scopes = ", ".join(w.scopes) or "scopes not named"
        n_clients = len(w.client_ids)
        who = _plural(n_clients, "client")
        if w.diagnosis == A.DIAGNOSIS_CLIENT_MUTATED or w.mutated_errors:
            origins = "; ".join(sorted({c.origin for c in w.clients.values() if c.origin}))
            who += f" (built at {origins})" if origins else ""
            who += f", changed fields: {', '.join(w.mutated_fields)}" if w.mutated_fields else ""
        history = w.history()
        live = ""
        if len(history) > 1 or (history and history[0].diagnosis != w.diagnosis):
            live = " Live verdicts in the processes: " + " -> ".join(
                f"{p.diagnosis} ({p.errors})" for p in history) + "."
        lines.append(
            f"Window {i} [{_when(analysis, w)}]: {_plural(w.errors, 'scope error')} ({scopes}) for key "
            f"{w.hint or w.fingerprint or 'none'} from {who} in {len(w.processes)} of {w.processes_seen} "
            f"process(es), {w.successes_same_key} successes of the same key on these endpoints meanwhile -> "
            f"{w.diagnosis}: {explanation(w)}{live}"
        )
    return lines


# ---- JSON ---------------------------------------------------------------------------------------------------
def to_json(analysis: Analysis, error: str | None = None) -> dict[str, Any]:
    """The documented ``report --json`` document (README: "report --json")."""
    windows = []
    for w in analysis.windows:
        windows.append({
            "start": iso(w.start_ns),
            "end": iso(w.end_ns),
            "fingerprint": w.fingerprint,
            "hint": w.hint,
            "scopes": list(w.scopes),
            "diagnosis": w.diagnosis,
            "explanation": explanation(w),
            "diagnosis_history": [{"diagnosis": p.diagnosis, "errors": p.errors, "first": iso(p.first_ns),
                                   "last": iso(p.last_ns)} for p in w.history()],
            "process_diagnoses": {p: dict(c) for p, c in sorted(w.process_diagnoses.items())},
            "errors": w.errors,
            "mutated_errors": w.mutated_errors,
            "successes_same_key": w.successes_same_key,
            "successes_other_processes": w.successes_other_processes,
            "endpoints": dict(w.endpoints.most_common()),
            "clients": [{"id": c.id, "origin": c.origin, "process": c.process, "errors": c.errors,
                         "mutated": sorted(c.mutated)} for c in w.clients.values()],
            "clients_failing": len(w.client_ids),
            "processes_failing": len(w.processes),
            "processes_seen": w.processes_seen,
            "request_ids": [rid for _, rid in w.request_ids],
        })
    return {
        "schema": SCHEMA,
        "error": error,
        "files": [{"path": f.path, "compression": f.compression, "lines": f.lines, "spans": f.spans,
                   "other_signal_lines": f.other_signals, "unreadable_lines": f.unreadable,
                   "unreadable_reasons": dict(f.reasons), "problem": f.problem or None} for f in analysis.files],
        "unreadable_lines": analysis.unreadable_lines,
        "totals": {
            "spans": analysis.spans,
            "calls": analysis.calls,
            "ok": analysis.calls_ok,
            "scope_errors": analysis.scope_errors,
            "keys": len(analysis.keys),
            "clients": len(analysis.clients),
            "processes": len(analysis.processes),
            "windows": len(analysis.windows),
            "start": iso(analysis.start_ns) if analysis.calls else None,
            "end": iso(analysis.end_ns) if analysis.calls else None,
            "bucket_seconds": analysis.bucket_seconds(),
        },
        "windows": windows,
        "exit_code": EXIT_UNREADABLE if error else exit_code(analysis),
    }


def write_json(analysis: Analysis, out: Any, error: str | None = None) -> None:
    json.dump(to_json(analysis, error), out, indent=2)
    out.write("\n")


# ---- terminal -----------------------------------------------------------------------------------------------
_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int], top: int | None = None) -> str:
    top = max(counts) if top is None and counts else (top or 0)
    if not top:
        return " " * len(counts)
    return "".join(_BARS[0 if c == 0 else max(1, min(8, round(c * (len(_BARS) - 1) / top)))] for c in counts)


@dataclass
class Columns:
    """The grid's buckets regrouped into at most ``n`` display columns."""

    lo: int  # first grid bucket
    per_column: int  # grid buckets per column
    n: int
    width_ns: int

    def start_ns(self, col: int) -> int:
        return (self.lo + col * self.per_column) * self.width_ns

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


def render_terminal(analysis: Analysis, console: Any = None, max_columns: int = 60) -> None:
    from rich.table import Table
    from rich.text import Text

    console = widen_when_piped(console)
    plain = {"markup": False, "highlight": False, "soft_wrap": not console.is_terminal}
    read = f"{analysis.spans} spans read from {_plural(len(analysis.files), 'file')}" if analysis.files else ""
    if analysis.unreadable_lines:
        read += f", {_plural(analysis.unreadable_lines, 'unreadable line')}"
    console.print(
        f"[bold]{analysis.calls}[/] OpenAI calls, [green]{analysis.calls_ok}[/] ok, "
        f"[red]{analysis.scope_errors}[/] missing-scope errors, {len(analysis.processes)} process(es), "
        f"{(analysis.end_ns - analysis.start_ns) / 1e9:.1f}s" + (f" ({read})" if read else "")
    )
    if not analysis.scope_errors:
        console.print(f"No missing-scope errors in these {analysis.calls} calls.", **plain)
        return
    table = Table(title="Scope-error windows (one per key and set of missing scopes, across processes)")
    for col in ("#", "when (UTC)", "fleet verdict", "live verdicts", "key", "scopes", "errors", "ok same key",
                "clients", "processes"):
        table.add_column(col)
    for i, w in enumerate(analysis.windows, 1):
        # Text cells: scopes and ids come from telemetry (and error bodies), never parsed as rich markup.
        table.add_row(*(Text(cell) for cell in (
            str(i), _when(analysis, w), w.diagnosis,
            ", ".join(f"{p.diagnosis} {p.errors}" for p in w.history()),
            w.hint or w.fingerprint, ", ".join(w.scopes), str(w.errors), str(w.successes_same_key),
            ", ".join(list(w.clients)[:5]) + (f" +{len(w.client_ids) - 5}" if len(w.client_ids) > 5 else ""),
            f"{len(w.processes)}/{w.processes_seen}",
        )))
    console.print(table)
    cols = columns(analysis, max_columns)
    console.print(f"[bold]Timeline[/] ({cols.per_column * analysis.bucket_seconds():.3g}s per column; "
                  "per key: ok calls, then scope errors)")
    label_w = 32
    err_by_key: dict[str, list[int]] = {}
    for w in analysis.windows:
        counts = cols.of(w.errors_series)
        acc = err_by_key.setdefault(w.fingerprint, [0] * cols.n)
        for k, c in enumerate(counts):
            acc[k] += c
    for fp, lane in sorted(analysis.keys.items()):
        errs = err_by_key.get(fp, [0] * cols.n)
        name = (lane.hint or fp)[:22]
        ok = cols.of(lane.ok)
        console.print(f"  {'key ' + name + ' ok':<{label_w - 2}}|{sparkline(ok)}| {sum(ok)}", **plain)
        if any(errs):
            console.print(f"  {'key ' + name + ' errors':<{label_w - 2}}|{sparkline(errs)}| {sum(errs)}", **plain)
    for _pid, proc in sorted(analysis.processes.items())[:20]:
        errs = cols.of(proc.errors)
        if any(errs):
            console.print(f"  {'process ' + proc.label[:22]:<{label_w - 2}}|{sparkline(errs)}| {sum(errs)}", **plain)
    for cid, client in sorted(analysis.clients.items()):
        errs = cols.of(client.errors)
        if any(errs):
            mark = " (mutated: " + ", ".join(sorted(client.mutated)) + ")" if client.mutated else ""
            console.print(f"  {'client ' + cid[:22]:<{label_w - 2}}|{sparkline(errs)}| {sum(errs)}{mark}", **plain)
    for line in axis_lines(analysis, cols, label_w + 1):
        console.print(line, **plain)
    console.print("[bold]Diagnosis[/]")
    for line in verdict_lines(analysis):
        # Piped or captured output keeps each verdict on one line, whatever the path lengths in it:
        # hard wraps there split phrases ("your / app") that people and scripts grep for.
        console.print("  " + line, **plain)


# ---- HTML ---------------------------------------------------------------------------------------------------
_NICE_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
                 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def tick_step_ns(span_ns: int, max_ticks: int = 10) -> int:
    """A round tick interval giving at most ``max_ticks`` ticks over ``span_ns``."""
    for step in _NICE_STEPS_S:
        if span_ns / (step * 1e9) <= max_ticks:
            return int(step * 1e9)
    return int(math.ceil(span_ns / max_ticks / 86400e9) * 86400e9)


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def write_html(analysis: Analysis, path: str | Path, max_columns: int = 120) -> Path:
    """A self-contained HTML page (inline SVG timeline, tables) to attach to an incident ticket."""
    path = Path(path)
    path.write_text(render_html(analysis, max_columns), encoding="utf-8")
    return path


def render_html(analysis: Analysis, max_columns: int = 120) -> str:
    cols = columns(analysis, max_columns)
    left, plot_w = 250, 860
    col_w = plot_w / cols.n
    t0 = cols.start_ns(0)
    t1 = cols.start_ns(cols.n)
    span_ns = max(1, t1 - t0)

    def x_of(ns: int) -> float:
        return left + (ns - t0) * plot_w / span_ns

    svg: list[str] = []
    y = 58.0
    # windows as background bands, labelled W1, W2...
    bands: list[str] = []
    # request ids per column, for the hover text
    rids: dict[tuple[str, int], list[str]] = {}
    for w in analysis.windows:
        for ns, rid in w.request_ids:
            col = (analysis.grid.bucket(ns) - cols.lo) // cols.per_column
            rids.setdefault((w.fingerprint, col), []).append(rid)

    def bucket_label(col: int) -> str:
        a, b = cols.start_ns(col), cols.start_ns(col + 1)
        return f"{clock(a)}Z {relative(analysis, a)} .. {relative(analysis, b)}"

    # -- per key: successes up, scope errors down (stacked by fleet verdict)
    svg.append(f'<text x="0" y="{y}" class="section">Keys: ok calls (up) and scope errors (down) per '
               f'{cols.per_column * analysis.bucket_seconds():.3g}s</text>')
    y += 10
    key_h = 90
    for fp, lane in sorted(analysis.keys.items()):
        ok = cols.of(lane.ok)
        by_verdict: dict[str, list[int]] = {}
        for w in analysis.windows:
            if w.fingerprint == fp:
                acc = by_verdict.setdefault(w.diagnosis, [0] * cols.n)
                for k, c in enumerate(cols.of(w.errors_series)):
                    acc[k] += c
        errs_total = [sum(v[k] for v in by_verdict.values()) for k in range(cols.n)]
        top_ok = max(ok) if any(ok) else 1
        top_err = max(errs_total) if any(errs_total) else 1
        mid = y + key_h / 2
        name = lane.hint or fp or "(no key)"
        svg.append(f'<g class="key-series" data-fingerprint="{_esc(fp)}" data-hint="{_esc(lane.hint)}">')
        svg.append(f'<text x="0" y="{mid - 4:.1f}" class="label">key {_esc(name)}</text>')
        svg.append(f'<text x="0" y="{mid + 12:.1f}" class="sub">{lane.calls} calls, {lane.scope_errors} scope '
                   f'errors</text>')
        svg.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{mid:.1f}" y2="{mid:.1f}" class="base"/>')
        for k in range(cols.n):
            x = left + k * col_w
            tip = [bucket_label(k), f"{ok[k]} ok"]
            if ok[k]:
                h = (key_h / 2 - 4) * ok[k] / top_ok
                svg.append(f'<rect class="ok" x="{x:.1f}" y="{mid - h:.1f}" width="{max(1.0, col_w - 1):.1f}" '
                           f'height="{h:.1f}" fill="{OK_COLOUR}"><title>{_esc(chr(10).join(tip))}</title></rect>')
            down = 0.0
            for verdict, counts in sorted(by_verdict.items()):
                c = counts[k]
                if not c:
                    continue
                h = (key_h / 2 - 4) * c / top_err
                tip_e = [*tip, f"{c} scope errors, verdict {verdict}"]
                if (fp, k) in rids:
                    tip_e.append("request ids: " + ", ".join(rids[(fp, k)][:5]))
                svg.append(f'<rect class="err" data-verdict="{verdict}" x="{x:.1f}" y="{mid + down:.1f}" '
                           f'width="{max(1.0, col_w - 1):.1f}" height="{h:.1f}" fill="{VERDICT_COLOUR[verdict]}">'
                           f'<title>{_esc(chr(10).join(tip_e))}</title></rect>')
                down += h
        svg.append("</g>")
        y += key_h + 8

    def lane_rows(title: str, rows: list[tuple[str, str, Series, Series, tuple[int, str] | None]],
                  cls: str, y: float) -> float:
        lane_h = 16 if len(rows) > 8 else 22
        svg.append(f'<text x="0" y="{y + 14}" class="section">{_esc(title)}</text>')
        y += 22
        for name, sub, ok_s, err_s, marker in rows:
            ok, errs = cols.of(ok_s), cols.of(err_s)
            top = max(max(ok), max(errs), 1)
            svg.append(f'<g class="{cls}"><text x="0" y="{y + lane_h - 4}" class="lane-label">{_esc(name)}'
                       f'<title>{_esc(sub)}</title></text>')
            svg.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{lane_h - 2}" class="lane-bg"/>')
            for k in range(cols.n):
                if not ok[k] and not errs[k]:
                    continue
                x = left + k * col_w
                tip = f"{name}\n{bucket_label(k)}\n{ok[k]} ok, {errs[k]} scope errors"
                if errs[k]:
                    h = (lane_h - 2) * errs[k] / top
                    svg.append(f'<rect x="{x:.1f}" y="{y + lane_h - 2 - h:.1f}" width="{max(1.0, col_w - 1):.1f}" '
                               f'height="{h:.1f}" fill="#c0392b"><title>{_esc(tip)}</title></rect>')
                else:
                    op = 0.25 + 0.6 * ok[k] / top
                    svg.append(f'<rect x="{x:.1f}" y="{y}" width="{max(1.0, col_w - 1):.1f}" height="{lane_h - 2}" '
                               f'fill="{OK_COLOUR}" fill-opacity="{op:.2f}"><title>{_esc(tip)}</title></rect>')
            if marker is not None:
                mx = x_of(marker[0])
                svg.append(f'<path class="mutation" d="M{mx - 5:.1f},{y - 1} L{mx + 5:.1f},{y - 1} L{mx:.1f},{y + 8}Z" '
                           f'fill="#8e44ad"><title>{_esc(marker[1])}</title></path>')
            svg.append("</g>")
            y += lane_h
        return y + 10

    procs = sorted(analysis.processes.values(), key=lambda p: (-p.total_errors, p.label))
    y = lane_rows(f"Processes ({len(procs)})", [(p.label[:34], p.id, p.ok, p.errors, None) for p in procs[:60]],
                  "process-lane", y)
    clients = sorted(analysis.clients.values(), key=lambda c: (-c.errors.sum(), c.id))[:60]
    y = lane_rows(f"Clients ({len(analysis.clients)})", [
        (f"client {c.id}"[:34], f"{c.origin} in {c.process}", c.ok, c.errors,
         (c.mutated_first_ns, f"mutated at {iso(c.mutated_first_ns)}: {', '.join(sorted(c.mutated))}")
         if c.mutated else None)
        for c in clients], "client-lane", y)
    label_end = -1e9  # labels of windows starting close together go side by side, not on top of each other
    for i, w in enumerate(analysis.windows, 1):
        xa, xb = x_of(w.start_ns), max(x_of(w.end_ns), x_of(w.start_ns) + 2)
        label_x = max(xa + 2, label_end + 3)
        label_end = label_x + 7 * len(f"W{i}")
        bands.append(f'<rect class="window" x="{xa:.1f}" y="30" width="{xb - xa:.1f}" height="{y - 30:.1f}" '
                     f'fill="{VERDICT_COLOUR[w.diagnosis]}" fill-opacity="0.08"><title>Window {i}: {w.diagnosis}, '
                     f'{w.errors} errors</title></rect>'
                     f'<text x="{label_x:.1f}" y="28" class="wlabel">W{i}</text>')
    # the time axis: ticks with UTC clock and relative time, top and bottom
    step = tick_step_ns(span_ns)
    first_tick = -(-t0 // step) * step
    axis = ['<g class="axis">']
    for edge, (ya, label_y) in (("top", (30, 12)), ("bottom", (y, y + 14))):
        axis.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ya}" y2="{ya}" class="axis-line"/>')
        t = first_tick
        while t <= t1:
            x = x_of(t)
            axis.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{ya - 4}" y2="{ya + 4}"/>')
            axis.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="30" y2="{y}"/>' if edge == "top" else "")
            axis.append(f'<text class="tick-label" x="{x:.1f}" y="{label_y}" text-anchor="middle">'
                        f'{clock(t, step < 1_000_000_000)}'
                        f'<tspan class="rel" dx="4">{_esc(relative(analysis, t))}</tspan></text>')
            t += step
    axis.append("</g>")
    height = y + 30
    legend = "".join(
        f'<span class="lg"><i style="background:{VERDICT_COLOUR[d]}"></i>{d}: {_esc(VERDICT_MEANING[d])}</span>'
        for d in verdicts.ALL)
    legend += (f'<span class="lg"><i style="background:{OK_COLOUR}"></i>ok calls</span>'
               '<span class="lg"><b style="color:#8e44ad">&#9660;</b> client mutated</span>')
    rows = []
    for i, w in enumerate(analysis.windows, 1):
        rows.append("<tr>" + "".join(
            f"<td>{_esc(x)}</td>" for x in (
                i, f"{iso(w.start_ns)} .. {iso(w.end_ns)}", w.diagnosis,
                ", ".join(f"{p.diagnosis} {p.errors}" for p in w.history()), w.hint or w.fingerprint,
                ", ".join(w.scopes), w.errors, w.successes_same_key,
                ", ".join(f"{c.id} ({c.origin})" for c in w.clients.values()),
                f"{len(w.processes)}/{w.processes_seen}", ", ".join(r for _, r in w.request_ids))) + "</tr>")
    verdict_items = "".join(f"<li>{_esc(v)}</li>" for v in verdict_lines(analysis))
    warnings = "".join(f"<p class='warn'>{_esc(wn)}</p>" for wn in analysis.warnings)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>OpenAI scope-error report</title>
<style>body{{font-family:sans-serif;margin:1.5em;color:#222}}td,th{{border:1px solid #ccc;padding:4px 8px;
font-size:13px;vertical-align:top}}table{{border-collapse:collapse}}.section{{font-weight:bold;font-size:13px}}
.label{{font:12px monospace}}.sub,.lane-label{{font:11px monospace;fill:#444}}.tick-label{{font:11px sans-serif}}
.rel{{fill:#777}}.axis-line,.tick{{stroke:#333}}.grid{{stroke:#ddd;stroke-dasharray:2,3}}.base{{stroke:#999}}
.lane-bg{{fill:#f6f6f6}}.wlabel{{font:10px sans-serif;fill:#555}}.lg{{margin-right:1.2em;font-size:13px}}
.lg i{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}}.warn{{color:#a15c00}}
#cursor{{stroke:#2c3e50;stroke-width:1;pointer-events:none}}#readout{{font:12px sans-serif}}</style></head><body>
<h1>OpenAI scope-error report</h1>
<p>{analysis.calls} calls ({analysis.calls_ok} ok, {analysis.scope_errors} missing-scope errors) from
{len(analysis.processes)} process(es), {len(analysis.clients)} client(s), {len(analysis.keys)} key(s),
{iso(analysis.start_ns)} .. {iso(analysis.end_ns)} (UTC); {analysis.unreadable_lines} unreadable line(s).</p>
{warnings}<div class="legend">{legend}</div>
<h2>Timeline</h2>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{left + plot_w + 60}" height="{height}"
 data-start="{t0}" data-end="{t1}" data-left="{left}" data-width="{plot_w}">
{''.join(bands)}{''.join(axis)}{''.join(svg)}
<line id="cursor" x1="-10" x2="-10" y1="30" y2="{y}"/><text id="readout" x="{left}" y="{height - 4}"></text></svg>
<h2>Windows</h2><table><tr><th>#</th><th>when (UTC)</th><th>fleet verdict</th><th>live verdicts</th><th>key</th>
<th>scopes</th><th>errors</th><th>ok same key</th><th>clients (origin)</th><th>processes failing/seen</th>
<th>request ids</th></tr>{''.join(rows)}</table>
<h2>Diagnosis</h2><ul>{verdict_items}</ul>
<script>
(function () {{
  var svg = document.getElementById("timeline");
  var t0 = Number(svg.dataset.start), t1 = Number(svg.dataset.end);
  var left = Number(svg.dataset.left), width = Number(svg.dataset.width);
  var cursor = document.getElementById("cursor"), readout = document.getElementById("readout");
  svg.addEventListener("mousemove", function (ev) {{
    var box = svg.getBoundingClientRect(), x = ev.clientX - box.left;
    if (x < left || x > left + width) {{ return; }}
    var t = t0 + (x - left) / width * (t1 - t0);
    cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
    readout.textContent = new Date(t / 1e6).toISOString() + "  +" + ((t - t0) / 1e9).toFixed(1) + "s";
  }});
  document.body.dataset.timelineReady = String(svg.querySelectorAll("g.key-series").length);
}})();
</script></body></html>"""
