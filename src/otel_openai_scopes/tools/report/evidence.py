"""The fleet view, once the stream is folded: for each window, what the whole fleet saw meanwhile, joined on what
the live diagnosis joins on (key fingerprint, organization, project, host, and the endpoint): successes of the
same key tuple on its endpoints (in which processes), successes of the same key and host with another
organization or project, other clients working; then its verdict (:mod:`.fleet`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ... import attributes as A
from ... import verdicts as V
from ..timegrid import Series
from . import limits as L
from .fleet import fleet_verdict
from .read import endpoint
from .windows import Derived, KeyTuple, Window

if TYPE_CHECKING:
    from .fold import Analysis

#: A success series: (key tuple, endpoint, process, series).
Passed = tuple[KeyTuple, tuple[str, str], str, Series]
#: How far before a window a parent's success counts (the live diagnosis's default look-back).
LOOK_BACK_NS = int(V.DEFAULT_WINDOW_SECONDS * 1e9)
#: The fields that make a copy's credentials other than its parent's.
CREDENTIALS = frozenset(A.MUTABLE_FIELDS)
MAX_DERIVED = 3


def finish(analysis: Analysis) -> None:
    """Sort the windows and give each its evidence and fleet verdict; say which caps were reached."""
    analysis.windows = sorted(analysis.window_sets.all(), key=lambda w: (w.start_ns, w.key))
    by_key: dict[tuple[str, str], list[Passed]] = {}  # by (fingerprint, host)
    for (kt, ep, proc), series in analysis.passed.items():
        by_key.setdefault((kt[0], kt[3]), []).append((kt, ep, proc, series))
    for w in analysis.windows:
        passed = by_key.get((w.fingerprint, w.host), [])
        _weigh(analysis, w, passed)
        w.diagnosis = fleet_verdict(w.errors, w.mutated_errors, w.successes_same_key, w.live,
                                    other_context_successes=sum(w.other_contexts.values()), mixed=w.mixed,
                                    grant_lacks=w.grant_lacks)
        _settle(analysis, w)
        if w.diagnosis in (V.NEVER_GRANTED, V.CONTEXT_MISMATCH):
            w.derived = _derived(analysis, w, by_key)
    analysis.warnings = [w for w in analysis.warnings if not w.startswith(_CAPPED)] + cap_warnings(analysis)


def _endpoints(analysis: Analysis, w: Window) -> set[tuple[str, str]]:
    """The window's endpoints, and every endpoint that needs one of its scopes."""
    endpoints = {endpoint(e) for e in w.endpoints}
    wanted = set(w.scopes)
    if wanted:
        endpoints |= {e for e, scopes in analysis.endpoint_scopes.items() if scopes & wanted}
    return endpoints


def _derived(analysis: Analysis, w: Window, by_key: dict[tuple[str, str], list[Passed]]) -> list[Derived]:
    """The window's failing clients made by copy()/with_options() with other credentials than their parent's,
    whose parent's credentials (as the parent was built) passed on these endpoints within the live diagnosis's
    look-back before the window's end: which pattern each fits (a rebound shared client, or a per-tenant copy)."""
    g = analysis.grid
    lo, hi = g.bucket(w.start_ns - LOOK_BACK_NS), g.bucket(w.end_ns)
    endpoints = _endpoints(analysis, w)
    out = []
    for cid in w.clients:
        lane = analysis.clients.get(cid)
        if lane is None or not lane.parent or not set(lane.copy_changed) & CREDENTIALS:
            continue
        parent = analysis.clients.get(lane.parent)
        if parent is None or parent.key_tuple is None or parent.key_tuple == lane.key_tuple:
            continue
        pt = parent.key_tuple
        n = sum(series.total(lo, hi) for kt, ep, _, series in by_key.get((pt[0], pt[3]), [])
                if kt == pt and ep in endpoints)
        if n:
            out.append(Derived(cid, lane.origin, parent.id, parent.origin, lane.copy_changed, n,
                               rebound=parent.last_ns < lane.first_ns))
        if len(out) >= MAX_DERIVED:
            break
    return out


def _weigh(analysis: Analysis, w: Window, passed: list[Passed]) -> None:
    """Count the window's evidence: calls of the same key and host that passed the scope check on its endpoints (or
    endpoints needing one of its scopes) in its buckets, of its own tuple (and where they came from) or another
    organization/project; and other clients' successes."""
    g = analysis.grid
    lo, hi = g.bucket(w.start_ns), g.bucket(w.end_ns)
    failing = w.processes
    endpoints = _endpoints(analysis, w)
    own = w.key_tuple
    succeeding: set[str] = set()
    total = other = 0
    contexts: Counter[tuple[str, str]] = Counter()
    for kt, ep, proc, series in passed:
        if ep not in endpoints:
            continue
        n = series.total(lo, hi)
        if not n:
            continue
        if kt != own:
            contexts[(kt[1], kt[2])] += n
            continue
        total += n
        if proc not in failing:
            other += n
            succeeding.add(proc)
    if w.mixed:  # keys or contexts counted together past a cap: none of it is evidence about one tuple
        total = other = 0
        succeeding.clear()
        contexts.clear()
    w.successes_same_key, w.successes_other_processes, w.processes_succeeding = total, other, len(succeeding)
    w.other_contexts = Counter(dict(sorted(contexts.items(), key=lambda kv: (-kv[1], kv[0]))))
    w.processes_seen = sum(1 for p in analysis.processes.values() if p.calls.total(lo, hi))
    ok_clients = [c.ok.total(lo, hi) for cid, c in analysis.clients.items() if cid not in w.client_ids]
    w.other_clients_ok = sum(1 for n in ok_clients if n)
    w.other_clients_ok_calls = sum(ok_clients)


def _settle(analysis: Analysis, w: Window) -> None:
    """What a window shows, independent of the order its spans came in: the key's hint, each client's origin
    and process from its lane (its first span), ties in counts by name, most failing client first."""
    key = analysis.keys.get(w.fingerprint)
    if key is not None and key.hint:
        w.hint = key.hint
    for cid, c in w.clients.items():
        lane = analysis.clients.get(cid)
        if lane is not None:
            c.origin, c.process = lane.origin, lane.process
    w.clients = dict(sorted(w.clients.items(), key=lambda kv: (-kv[1].errors, kv[0])))
    w.endpoints = Counter(dict(sorted(w.endpoints.items(), key=lambda kv: (-kv[1], kv[0]))))
    w.mutated_fields = Counter(dict(sorted(w.mutated_fields.items(), key=lambda kv: (-kv[1], kv[0]))))
    w.process_diagnoses = {p: Counter(dict(sorted(c.items()))) for p, c in sorted(w.process_diagnoses.items())}


_CAPPED = "warning: more than "


def cap_warnings(analysis: Analysis) -> list[str]:
    """One line per cap the input reached: what was counted together beyond it (never silently)."""
    a, other = analysis, L.OTHER
    out = []
    for what, lanes, cap in (("keys", a.keys, L.MAX_KEYS), ("processes", a.processes, L.MAX_PROCESS_LANES),
                             ("clients", a.clients, L.MAX_CLIENT_LANES)):
        if other in lanes:
            out.append(f"{_CAPPED}{cap} {what}: the others are counted as one, named {other}")
    if (other, other) in a.contexts:
        out.append(f"{_CAPPED}{L.MAX_CONTEXTS} (organization, project) pairs: the others are counted as one, named "
                   f"{other}; their windows get no verdict from successes")
    if other in a.hosts:
        out.append(f"{_CAPPED}{L.MAX_HOSTS} hosts: the others are counted as one, named {other}")
    if (other, other) in a.endpoint_scopes:
        out.append(f"{_CAPPED}{L.MAX_ENDPOINTS} endpoints: the others are counted as one, named {other}")
    if any(proc == other for _, _, proc in a.passed):
        out.append(f"{_CAPPED}{L.MAX_PASSED} (key, endpoint, process) success series: further processes' "
                   f"successes are counted as one process, named {other}")
    if a.window_sets.capped:
        out.append(f"{_CAPPED}{L.MAX_WINDOWS} windows: later errors joined the nearest window of their key and "
                   f"scopes, or one window named {other}")
    if a.window_sets.budget.spent_out:
        out.append(f"{_CAPPED}{L.MAX_WINDOW_DETAIL} entries of window detail (failing clients, processes, "
                   "endpoints): the counts of failing clients and processes are lower bounds")
    return out
