"""Parts of one input folded apart (byte ranges of one file read by several processes) merged into exactly the
state one pass gives, or refused when that cannot be guaranteed (a cap reached: which spans land in "(other)"
depends on the order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..timegrid import Series
from . import limits as L
from .read import merge_files

if TYPE_CHECKING:
    from .fold import Analysis


def exact(a: Analysis) -> bool:
    """No cap reached: every count is its own, so parts of the input merge exactly."""
    lanes = (*a.processes.values(), *a.clients.values())
    return (len(a.keys) <= L.MAX_KEYS and len(a.processes) <= L.MAX_PROCESS_LANES
            and len(a.clients) <= L.MAX_CLIENT_LANES
            and L.OTHER not in a.keys and L.OTHER not in a.processes and L.OTHER not in a.clients
            and (L.OTHER, L.OTHER) not in a.endpoint_scopes and len(a.passed) < L.MAX_PASSED
            and (L.OTHER, L.OTHER) not in a.contexts and L.OTHER not in a.hosts
            and all(len(w.live_contexts) < L.MAX_NAMES and len(w.grants) < L.MAX_NAMES for w in a.window_sets.all())
            and not a.window_sets.capped and not a.window_sets.budget.spent_out and a.window_sets.budget.left >= 0
            and not any(lane.by_window_full for lane in lanes)
            and all(len(c.mutated) < L.MAX_NAMES for c in a.clients.values())
            and all(len(w.client_ids) <= L.MAX_WINDOW_CLIENTS and len(w.clients) == len(w.client_ids)
                    and len(w.mutated_fields) < L.MAX_NAMES for w in a.window_sets.all()))


def merge(a: Analysis, b: Analysis) -> bool:
    """Fold ``b``, the (unfinished) state of the spans that come right after ``a``'s, into ``a``, as if they had
    been added one by one after them. False when that cannot be guaranteed: the caller then reads in one pass.
    First-seen values (hints, origins, labels, required scopes) come from the earlier part, as they would."""
    if not (exact(a) and exact(b)) or a.gap_ns != b.gap_ns or a.grid.max_buckets != b.grid.max_buckets:
        return False
    a.grid.take(b.grid)
    if b.calls:
        a.start_ns = b.start_ns if not a.calls else min(a.start_ns, b.start_ns)
        a.end_ns = max(a.end_ns, b.end_ns)
    a.spans += b.spans
    a.calls += b.calls
    a.calls_ok += b.calls_ok
    a.scope_errors += b.scope_errors
    for fp, ok in b.keys.items():
        mine = a.keys.get(fp)
        if mine is None:
            a.keys[fp] = ok
            continue
        mine.hint = mine.hint or ok.hint
        mine.ok.absorb(ok.ok)
        mine.calls += ok.calls
        mine.passed += ok.passed
        mine.scope_errors += ok.scope_errors
    for pid, op in b.processes.items():
        mp = a.processes.get(pid)
        if mp is None:
            a.processes[pid] = op
            continue
        mp.absorb(op)
        mp.calls.absorb(op.calls)
        mp.total_calls += op.total_calls
        mp.total_errors += op.total_errors
    for cid, oc in b.clients.items():
        mc = a.clients.get(cid)
        if mc is None:
            a.clients[cid] = oc
            continue
        mc.absorb(oc)
        mc.absorb_calls(oc)
        if oc.mutated:
            mc.mutated_first_ns = oc.mutated_first_ns if not mc.mutated else min(mc.mutated_first_ns,
                                                                                  oc.mutated_first_ns)
            mc.mutated |= oc.mutated
    for pk, series in b.passed.items():
        mine_s = a.passed.get(pk)
        if mine_s is None:
            a.passed[pk] = series
        else:
            mine_s.absorb(series)
    for ep, scopes in b.endpoint_scopes.items():
        a.endpoint_scopes.setdefault(ep, scopes)
    a.contexts |= b.contexts
    a.hosts |= b.hosts
    if len(a.contexts) > L.MAX_CONTEXTS or len(a.hosts) > L.MAX_HOSTS or len(a.endpoint_scopes) > L.MAX_ENDPOINTS:
        return False
    sets = a.window_sets.sets
    for wk, oset in b.window_sets.sets.items():
        wset = sets.get(wk)
        if wset is None:
            sets[wk] = oset
            a.window_sets.count += len(oset.windows)
            continue
        for window in oset.windows:  # disjoint and more than gap apart, like wset's: each joins what it touches
            w, merged = wset.find(window.start_ns, window.end_ns, a.gap_ns)
            a.window_sets.count -= len(merged)
            if w is None:
                wset.insert(window)
                a.window_sets.count += 1
            else:
                w.absorb(window)
                wset.refresh(w)
    if a.window_sets.count > L.MAX_WINDOWS or not a.window_sets.rebudget():
        return False
    a.files = merge_files(a.files + b.files)
    a.grid.retain(series_in_use(a))  # what was absorbed above lives on in the series it went into
    return exact(a)


def series_in_use(a: Analysis) -> list[Series]:
    out: list[Series] = [k.ok for k in a.keys.values()]
    for p in a.processes.values():
        out += p.series()
    for c in a.clients.values():
        out += c.series()
    out += a.passed.values()
    out += (w.errors_series for w in a.window_sets.all())
    return out
