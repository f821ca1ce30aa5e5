"""The fleet view, once the stream is folded: for each window, what the whole fleet saw meanwhile (same-key
successes on its endpoints, in which processes, other clients working), then its verdict (:mod:`.fleet`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..timegrid import Series
from .fleet import fleet_verdict
from .model import Window
from .read import endpoint

if TYPE_CHECKING:
    from .fold import Analysis


def finish(analysis: Analysis) -> None:
    """Sort the windows and give each its evidence and fleet verdict."""
    analysis.windows = sorted((w for s in analysis.sets.values() for w in s.windows),
                              key=lambda w: (w.start_ns, w.fingerprint, w.scopes))
    by_key: dict[str, list[tuple[tuple[str, str], str, Series]]] = {}
    for (fp, ep, proc), series in analysis.passed.items():
        by_key.setdefault(fp, []).append((ep, proc, series))
    for w in analysis.windows:
        _weigh(analysis, w, by_key.get(w.fingerprint, []))
        w.diagnosis = fleet_verdict(w.errors, w.mutated_errors, w.successes_same_key, w.live)
        _settle(analysis, w)


def _weigh(analysis: Analysis, w: Window, passed: list[tuple[tuple[str, str], str, Series]]) -> None:
    """Count the window's evidence: same-key calls that passed the scope check on its endpoints (or endpoints
    needing one of its scopes) in its buckets, where they came from, and other clients' successes."""
    g = analysis.grid
    lo, hi = g.bucket(w.start_ns), g.bucket(w.end_ns)
    failing = w.processes
    endpoints = {endpoint(e) for e in w.endpoints}
    wanted = set(w.scopes)
    if wanted:
        endpoints |= {e for e, scopes in analysis.endpoint_scopes.items() if scopes & wanted}
    succeeding: set[str] = set()
    total = other = 0
    for ep, proc, series in passed:
        if ep not in endpoints:
            continue
        n = series.total(lo, hi)
        if n:
            total += n
            if proc not in failing:
                other += n
                succeeding.add(proc)
    w.successes_same_key, w.successes_other_processes, w.processes_succeeding = total, other, len(succeeding)
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
