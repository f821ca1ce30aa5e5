#!/usr/bin/env python3
"""Where otel-openai-scopes spends its per-call instructions.

    .venv/bin/python benchmarks/hotspots.py [--scenarios chat,chat_401,stream] [--procs 2] [--no-cprofile]

Callgrind sees CPython's C functions, not Python ones, so three complementary views:

1. Ablations under callgrind (exact, the main view). Also prices ``floor send hook``: the floor
   plus the least a per-attempt ``_send_request`` hook does (_floor.py), the mechanism the package
   needs to read the headers as sent. ``ours`` with one computation replayed from
   a cache (benchmarks/_ablations.py; same span/metric output). ``ours - ours+X`` is what X costs
   per call, in instructions: the most a fix of X can save.
2. C-level exclusive cost, ours minus bare, per interpreter/library function (callgrind_annotate):
   shows *kinds* of work (regex engine, dict lookups, allocation, string formatting, hashing).
3. cProfile of ours, restricted to this package's functions (Python-level attribution, wall time
   with profiler overhead: read the shares, not the microseconds).

Prints the three tables and writes benchmarks/results/hotspots.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _ablations import ABLATIONS  # noqa: E402
from _harness import (  # noqa: E402
    SNAPSHOT,
    CallgrindResult,
    VariantSpec,
    Worker,
    callgrind_variant,
    install_signal_handlers,
    main_python,
    run_parallel,
    snapshot_source,
)
from _scenarios import SCENARIOS  # noqa: E402

_LINE = re.compile(r"^\s*([\d,]+)\s+(.*?)(?:\s+\[[^\]]*\])?\s*$")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def annotate(path: Path) -> dict[str, int]:
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", "--show-percs=no",
                          "--inclusive=no", str(path)], capture_output=True, text=True).stdout
    funcs: dict[str, int] = defaultdict(int)
    started = False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = _LINE.match(line)
        if not m:
            continue
        count = int(m.group(1).replace(",", ""))
        where = m.group(2)
        file, _, fn = where.rpartition(":")
        fn = re.sub(r"'\d+$", "", fn)
        short = os.path.basename(file) if file else "?"
        funcs[f"{short}:{fn}"] += count
    return funcs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="chat,chat_401,stream")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--procs", type=int, default=2, help="processes (heap layouts) per run, averaged")
    ap.add_argument("--stream-procs", type=int, default=4, help="the same for stream (layout noise ~±50K)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ablations", default=",".join(ABLATIONS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--no-cprofile", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "hotspots.json"))
    args = ap.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    ablations = [a for a in args.ablations.split(",") if a]
    py = main_python()
    install_signal_handlers()
    t0 = time.time()

    work = Path(tempfile.mkdtemp(prefix="bench-hot-"))
    SNAPSHOT["path"], source_info = snapshot_source(work)
    dirty = " + uncommitted changes" if source_info["src_dirty"] else ""
    log(f"measuring src/ as of commit {source_info['commit']}{dirty}"
        f" (snapshot {source_info['src_sha256']})")
    keep = work / "keep"
    keep.mkdir()
    specs = [VariantSpec("bare", py, "bare"), VariantSpec("floor", py, "bare"), VariantSpec("ours", py, "bare"),
             VariantSpec("floor-sendhook", py, "bare")]
    specs += [VariantSpec("ours", py, "bare", ablate=a) for a in ablations]
    log(f"callgrind: {len(specs)} runs x {len(scenarios)} scenarios x {args.calls} calls")

    def job(spec, sc, proc):
        def run():
            r = callgrind_variant(spec, [sc], args.calls, 1, args.warmup, work,
                                  keep if proc == 0 and not spec.ablate and spec.name in ("bare", "ours") else None,
                                  layout_seed=proc + 1)
            v = r.per_call.get(sc)
            log(f"  {spec.name}{'+' + spec.ablate if spec.ablate else ''} {sc}: " +
                (f"{v[0] / 1e6:.3f}M" if v else f"n/a {r.na}"))
            return r
        return run

    pairs = [(spec, sc, p) for spec in specs for sc in scenarios
             for p in range(args.stream_procs if sc == "stream" else args.procs)]
    outs = run_parallel([job(spec, sc, p) for spec, sc, p in pairs], args.jobs)
    res = []
    for i in range(len(specs)):
        merged = CallgrindResult()
        for (spec, sc, _p), r in zip(pairs, outs):
            if isinstance(r, Exception):
                r = CallgrindResult(na={sc: f"driver error: {r}"})
            if spec is specs[i]:
                for key, vals in r.per_call.items():
                    merged.per_call.setdefault(key, []).extend(vals)
                merged.na.update(r.na)
        res.append(merged)
    bare, floor, ours, floor_hook = res[0], res[1], res[2], res[3]

    def pc(r, s):
        v = r.per_call.get(s)
        return sum(v) / len(v) if v else None

    report: dict = {"source": source_info, "calls": args.calls, "scenarios": {},
                    "ablations": {a: ABLATIONS[a][1] for a in ablations}}
    print("\n1. Ablations under callgrind: instructions per call saved by replaying one computation "
          "(ours - ours+ablation)")
    head = f"{'ablation':<18}" + "".join(f"{s:>15}" for s in scenarios)
    print(head)
    print("-" * len(head))
    rows = [("bare", [pc(bare, s) for s in scenarios]), ("floor - bare", [
        (pc(floor, s) - pc(bare, s)) if pc(floor, s) and pc(bare, s) else None for s in scenarios]),
        ("ours - bare", [(pc(ours, s) - pc(bare, s)) if pc(ours, s) and pc(bare, s) else None for s in scenarios]),
        ("ours - floor", [(pc(ours, s) - pc(floor, s)) if pc(ours, s) and pc(floor, s) else None
                          for s in scenarios]),
        ("floor send hook", [(pc(floor_hook, s) - pc(floor, s)) if pc(floor_hook, s) and pc(floor, s) else None
                             for s in scenarios])]
    for name, vals in rows:
        print(f"{name:<18}" + "".join(f"{(v / 1e3 if v is not None else float('nan')):>14.1f}K" for v in vals))
    print("-" * len(head))
    for s in scenarios:
        report["scenarios"][s] = {"bare": pc(bare, s), "floor": pc(floor, s), "ours": pc(ours, s),
                                  "floor_with_send_hook": pc(floor_hook, s), "savings": {}}
    for spec, r in zip(specs[4:], res[4:]):
        vals = []
        for s in scenarios:
            a, b = pc(ours, s), pc(r, s)
            saving = a - b if a is not None and b is not None else None
            vals.append(saving)
            report["scenarios"][s]["savings"][spec.ablate] = saving
        print(f"{spec.ablate:<18}" + "".join(f"{(v / 1e3 if v is not None else float('nan')):>14.1f}K" for v in vals))
    print(f"(K = 10^3 instructions per call; means over {args.procs} heap layouts ({args.stream_procs} for stream). "
          "Noise of a difference: ~±5K, stream ~±40K (layout effects in the SDK's own caches, README). "
          "Descriptions in the JSON.)")

    # 2. C-level diff
    print(f"\n2. C functions, exclusive instructions per call, ours minus bare (top {args.top} per scenario)")
    report["c_level"] = {}
    for s in scenarios:
        fo = keep / f"callgrind.ours.{s}.{args.calls}calls.out"
        fb = keep / f"callgrind.bare.{s}.{args.calls}calls.out"
        if not (fo.exists() and fb.exists()):
            continue
        a, b = annotate(fo), annotate(fb)
        diff = {k: (a.get(k, 0) - b.get(k, 0)) / args.calls for k in set(a) | set(b)}
        top = sorted(diff.items(), key=lambda kv: -kv[1])[: args.top]
        report["c_level"][s] = top
        print(f"  {s}:")
        for k, v in top:
            print(f"    {v / 1e3:>8.1f}K  {k}")

    # 3. cProfile
    if not args.no_cprofile:
        import pstats

        print("\n3. cProfile of ours (this package's functions; cumulative us per call with profiler "
              "overhead, calls per call)")
        report["cprofile"] = {}
        for s in scenarios:
            n = 300
            w = Worker(py, "ours")
            try:
                w.warm(s, args.warmup)
                path = Path(tempfile.mkstemp(suffix=".pstats")[1])
                if w.command(f"profile {s} {n} {path}") != "ok":
                    continue
            finally:
                w.close()
            st = pstats.Stats(str(path)).stats
            path.unlink()
            rows = []
            for (f, line, fn), (_cc, nc, tt, ct, _callers) in st.items():
                if "otel_openai_scopes" in f:
                    rows.append((ct / n * 1e6, tt / n * 1e6, nc / n, f"{os.path.basename(f)}:{line} {fn}"))
            rows.sort(reverse=True)
            report["cprofile"][s] = rows[: args.top]
            print(f"  {s}:")
            for ct, tt, nc, name in rows[: args.top]:
                print(f"    {ct:>7.1f}us cum {tt:>6.1f}us self {nc:>4.1f}x  {name}")

    shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {os.path.relpath(out)} ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
