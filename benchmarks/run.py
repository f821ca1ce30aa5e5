#!/usr/bin/env python3
"""Per-call overhead of otel-openai-scopes against the bare SDK, the floor and other instrumentations.

    .venv/bin/python benchmarks/run.py            # full run (~15 min on an idle 2-core machine)
    .venv/bin/python benchmarks/run.py --quick    # fewer calls, processes and rounds (~5 min)

Primary figure: instructions per call under callgrind (deterministic to ~0.1%). Secondary: wall
time as medians of per-round paired differences over interleaved rounds (noisy). Prints a table
and writes benchmarks/results/latest.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import (  # noqa: E402
    COMPARES,
    SNAPSHOT,
    CallgrindResult,
    VariantSpec,
    callgrind_variant,
    ensure_compare_venv,
    install_signal_handlers,
    main_python,
    run_parallel,
    snapshot_source,
    wall_rounds,
)
from _scenarios import SCENARIOS  # noqa: E402

# Targets (instructions per call), from the issue.
TARGET_RATIO_TO_FLOOR = 1.2
TARGET_NOSDK_FRACTION_OF_FLOOR = 0.05

MAIN_VARIANTS = {
    "bare": "uninstrumented SDK (same SDK providers configured)",
    "floor": "floor: one CLIENT span with the contract's attributes + the contract's metric recordings, "
             "all constants (benchmarks/_floor.py)",
    "ours": "otel-openai-scopes, SDK TracerProvider + MeterProvider",
    "ours-nosdk": "otel-openai-scopes, no SDK: no providers set, global no-op API",
    "floor-nosdk": "the floor with no SDK (context: what the API calls alone cost)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_specs(skip_compare: bool) -> tuple[list[VariantSpec], dict[str, str]]:
    py = main_python()
    specs = [VariantSpec(name, py, "bare") for name in MAIN_VARIANTS]
    notes: dict[str, str] = {}
    for cmp in COMPARES:
        if skip_compare:
            python, reason = None, "skipped (--no-compare)"
        else:
            python, reason = ensure_compare_venv(cmp, log)
        if cmp.note:
            notes[cmp.name] = cmp.note
        base = f"bare@{cmp.name}"
        specs.append(VariantSpec(base, python, base, na=reason, venv=cmp.venv))
        specs.append(VariantSpec(cmp.name, python, base, na=reason, venv=cmp.venv))
    return specs, notes


def fmt_m(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x / 1e6:+.3f}" if sign else f"{x / 1e6:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    ap.add_argument("--calls", type=int, help="calls per counted callgrind loop (default 30; quick 20)")
    ap.add_argument("--procs", type=int,
                    help="processes (heap layouts) per variant x scenario, one counted loop each, averaged "
                         "(default 3; quick 1)")
    ap.add_argument("--stream-procs", type=int,
                    help="processes for the stream scenario, whose SDK cost varies ~±50K by layout (default 5; "
                         "quick 1)")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up calls before measuring (default 50)")
    ap.add_argument("--rounds", type=int, help="wall-time rounds per scenario (default 150; quick 30)")
    ap.add_argument("--round-calls", type=int, default=10, help="calls per variant per wall round (default 10)")
    ap.add_argument("--jobs", type=int, default=2, help="callgrind processes at once (default 2)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list")
    ap.add_argument("--variants", default="", help="comma list (default: all)")
    ap.add_argument("--no-wall", action="store_true", help="skip the wall-time rounds")
    ap.add_argument("--no-compare", action="store_true", help="skip openai-v2 / genai-openai (no venvs)")
    ap.add_argument("--keep-callgrind", action="store_true",
                    help="keep the last counted dump of each variant x scenario in benchmarks/results/callgrind/")
    ap.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = ap.parse_args()
    calls = args.calls or (20 if args.quick else 30)
    procs = args.procs or (1 if args.quick else 3)
    stream_procs = args.stream_procs or (1 if args.quick else max(5, procs))

    def procs_for(sc: str) -> int:
        return stream_procs if sc == "stream" else procs
    rounds = args.rounds or (30 if args.quick else 150)
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        ap.error("valgrind and callgrind_control are needed (apt-get install valgrind)")

    install_signal_handlers()
    t_start = time.time()
    specs, notes = build_specs(args.no_compare)
    if args.variants:
        # bare and floor are always measured (every ratio needs them), and each variant's own bare.
        needed = set(args.variants.split(",")) | {"bare", "floor"}
        needed |= {s.baseline for s in specs if s.name in needed}
        specs = [s for s in specs if s.name in needed]

    # -- callgrind -------------------------------------------------------------------------------------
    keep_dir = None
    if args.keep_callgrind:
        keep_dir = HERE / "results" / "callgrind"
        keep_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-cg-"))
    SNAPSHOT["path"], source_info = snapshot_source(workdir)
    dirty = " + uncommitted changes" if source_info["src_dirty"] else ""
    log(f"measuring src/ as of commit {source_info['commit']}{dirty}"
        f" (snapshot {source_info['src_sha256']})")
    log(f"callgrind: {len(specs)} variants x {len(scenarios)} scenarios x {procs} processes ({stream_procs} for "
        f"stream), {calls} counted calls each after {args.warmup} warm-up, {args.jobs} at once")

    def job(spec: VariantSpec, sc: str, proc: int):
        # one fresh process per variant x scenario: the SDK's own caches make a scenario's count
        # depend on which scenarios ran before it in the same process (README, "caveats")
        def run():
            if spec.python is None:
                return None
            t0 = time.time()
            res = callgrind_variant(spec, [sc], calls, 1, args.warmup, workdir,
                                    keep_dir if proc == 0 else None, layout_seed=proc + 1)
            got = res.per_call.get(sc)
            log(f"  {spec.name:<18} {sc:<14} " + (f"{sum(got) / len(got) / 1e6:.3f}M" if got else
                                                   f"n/a: {res.na.get(sc, '')[:100]}") + f" ({time.time() - t0:.0f}s)")
            return res
        return run

    jobs = [(spec, sc, p) for spec in specs for sc in scenarios for p in range(procs_for(sc))]
    for spec in specs:
        if spec.python is None:
            log(f"  {spec.name}: n/a ({spec.na})")
    outs = run_parallel([job(spec, sc, p) for spec, sc, p in jobs], args.jobs)
    cg_results: dict = {}
    for (spec, sc, _p), res in zip(jobs, outs):
        if isinstance(res, Exception):
            res = CallgrindResult(na={sc: f"driver error: {type(res).__name__}: {res}"})
        if res is None:
            continue
        merged = cg_results.setdefault(spec.name, CallgrindResult())
        for key, vals in res.per_call.items():
            merged.per_call.setdefault(key, []).extend(vals)
        merged.handshake.update(res.handshake)
        merged.na.update(res.na)
        merged.info = merged.info or res.info

    # -- wall ----------------------------------------------------------------------------------------
    wall: dict = {}
    if not args.no_wall:
        log(f"wall time: {rounds} interleaved rounds x {args.round_calls} calls per variant per scenario "
            "(noisy machine: read the paired differences, not the absolute times)")
        wall = wall_rounds(specs, scenarios, rounds, args.round_calls, args.warmup, log)

    shutil.rmtree(workdir, ignore_errors=True)

    # -- assemble ------------------------------------------------------------------------------------
    by_name = {s.name: s for s in specs}
    variants_out: dict = {}
    for spec in specs:
        res = cg_results.get(spec.name)
        entry: dict = {
            "description": MAIN_VARIANTS.get(spec.name) or (
                f"uninstrumented SDK in {spec.venv}" if spec.name.startswith("bare@") else
                f"opentelemetry-instrumentation-{spec.name} in {spec.venv}"),
            "venv": spec.venv,
            "baseline": spec.baseline,
            "scenarios": {},
        }
        if res is not None and res.info:
            entry["process"] = res.info
        if spec.python is None:
            entry["na"] = spec.na
        for sc in scenarios:
            row: dict = {}
            if res is None:
                row["na"] = spec.na
            elif sc in res.na:
                row["na"] = res.na[sc]
            else:
                vals = res.per_call.get(sc, [])
                row["instructions_per_call"] = sum(vals) / len(vals)
                row["instructions_per_call_by_process"] = vals
                row["spread_instructions"] = max(vals) - min(vals)
                row["handshake_instructions"] = res.handshake.get(sc)
            if sc in wall.get(spec.name, {}):
                row["wall"] = wall[spec.name][sc]
            entry["scenarios"][sc] = row
        variants_out[spec.name] = entry

    def ir(name: str, sc: str) -> float | None:
        return variants_out.get(name, {}).get("scenarios", {}).get(sc, {}).get("instructions_per_call")

    targets: dict = {}
    for sc in scenarios:
        floor_over = None
        if ir("floor", sc) is not None and ir("bare", sc) is not None:
            floor_over = ir("floor", sc) - ir("bare", sc)
        for name, entry in variants_out.items():
            row = entry["scenarios"][sc]
            own, base = ir(name, sc), ir(by_name[name].baseline, sc)
            if own is None or base is None or name == by_name[name].baseline:
                continue
            row["overhead_instructions"] = own - base
            row["overhead_fraction_of_bare"] = (own - base) / base
            if floor_over:
                row["overhead_ratio_to_floor"] = (own - base) / floor_over
        t: dict = {"floor_overhead": floor_over}
        if floor_over and ir("ours", sc) is not None:
            ours_over = ir("ours", sc) - ir("bare", sc)
            t["ours_overhead"] = ours_over
            t["ours_ratio_to_floor"] = ours_over / floor_over
            t["ours_le_1_2x_floor"] = ours_over <= TARGET_RATIO_TO_FLOOR * floor_over
        if floor_over and ir("ours-nosdk", sc) is not None:
            nosdk_over = ir("ours-nosdk", sc) - ir("bare", sc)
            t["ours_nosdk_overhead"] = nosdk_over
            t["ours_nosdk_fraction_of_floor"] = nosdk_over / floor_over
            t["ours_nosdk_le_5pct_floor"] = nosdk_over <= TARGET_NOSDK_FRACTION_OF_FLOOR * floor_over
        targets[sc] = t

    def version_of(mod: str) -> str:
        r = subprocess.run([main_python(), "-c", f"import importlib.metadata as m; print(m.version('{mod}'))"],
                           capture_output=True, text=True)
        return r.stdout.strip()

    result = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - t_start, 1),
        "source": source_info,
        "command": " ".join([os.path.relpath(sys.executable, os.getcwd()) if sys.executable else "python",
                             os.path.relpath(__file__, os.getcwd()), *sys.argv[1:]]),
        "config": {
            "calls_per_counted_loop": calls, "processes_per_variant_scenario": procs,
            "processes_for_stream": stream_procs,
            "warmup_calls": args.warmup,
            "wall_rounds": 0 if args.no_wall else rounds, "wall_calls_per_round": args.round_calls,
            "scenarios": {s: SCENARIOS[s] for s in scenarios},
            "transport": "httpx2.MockTransport (in process, prebuilt responses)",
            "tracing": "TracerProvider + SimpleSpanProcessor -> exporter that drops spans",
            "metrics": "MeterProvider + InMemoryMetricReader (never collected during the loop)",
            "no_sdk": "ours-nosdk / floor-nosdk: no providers set (global proxy -> no-op API), SDK not imported",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "versions": {p: version_of(p) for p in ("openai", "httpx2", "opentelemetry-sdk",
                                                    "opentelemetry-api", "wrapt", "otel-openai-scopes")},
            "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
        },
        "targets": {"ours_overhead_max_ratio_to_floor": TARGET_RATIO_TO_FLOOR,
                    "ours_nosdk_overhead_max_fraction_of_floor": TARGET_NOSDK_FRACTION_OF_FLOOR,
                    "by_scenario": targets},
        "notes": {k: v for k, v in notes.items() if k in variants_out},
        "variants": variants_out,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    print_table(result, scenarios)
    print(f"\nwrote {os.path.relpath(out)} ({result['duration_s']:.0f}s)")
    return 0


def print_table(result: dict, scenarios: list[str]) -> None:
    variants = result["variants"]
    has_wall = any("wall" in v["scenarios"].get(s, {}) for v in variants.values() for s in scenarios)
    head = f"{'scenario':<14} {'variant':<18} {'Minstr/call':>11} {'spread':>7} {'+vs bare':>9} {'x floor':>8}"
    if has_wall:
        head += f" {'wall ms':>8} {'wall +us (noisy)':>17}"
    print("\nInstructions per call under callgrind (M = 10^6), mean over processes; 'spread' = max - min across "
          "processes (memory layouts); '+vs bare' = overhead over the bare SDK of the same venv; 'x floor' = "
          "overhead / floor's overhead." + (
              "\nWall: median per-call time and median of per-round paired differences vs bare [IQR], "
              "interleaved rounds; NOISY (2 shared cores)." if has_wall else ""))
    print(head)
    print("-" * len(head))
    for sc in scenarios:
        for name, v in variants.items():
            row = v["scenarios"].get(sc, {})
            if "na" in row:
                line = f"{sc:<14} {name:<18} n/a: {row['na'][:90]}"
                print(line)
                continue
            over = row.get("overhead_instructions")
            ratio = row.get("overhead_ratio_to_floor")
            spread = row.get("spread_instructions")
            several = len(row.get("instructions_per_call_by_process", [])) > 1
            line = (f"{sc:<14} {name:<18} {fmt_m(row.get('instructions_per_call')):>11} "
                    f"{(f'{spread / 1e3:.0f}K' if spread is not None and several else ''):>7} "
                    f"{fmt_m(over, sign=True) if over is not None else '':>9} "
                    f"{(f'{ratio:.2f}x' if ratio is not None else ''):>8}")
            if has_wall:
                w = row.get("wall", {})
                if "median_ns" in w:
                    line += f" {w['median_ns'] / 1e6:>8.3f}"
                    if "paired_diff_median_ns" in w:
                        line += (f" {w['paired_diff_median_ns'] / 1e3:>+7.0f} "
                                 f"[{w['paired_diff_q1_ns'] / 1e3:+.0f},{w['paired_diff_q3_ns'] / 1e3:+.0f}]")
            print(line)
        print()
    print("Targets (instructions): ours overhead <= 1.2x floor overhead; ours with no SDK <= 5% of floor overhead")
    for sc, t in result["targets"]["by_scenario"].items():
        parts = [f"{sc:<14} floor {fmt_m(t.get('floor_overhead'), sign=True)}M"]
        if "ours_ratio_to_floor" in t:
            parts.append(f"ours {t['ours_ratio_to_floor']:.2f}x floor "
                         f"{'MET' if t['ours_le_1_2x_floor'] else 'MISSED'}")
        if "ours_nosdk_fraction_of_floor" in t:
            parts.append(f"no-SDK {t['ours_nosdk_fraction_of_floor'] * 100:.1f}% of floor "
                         f"{'MET' if t['ours_nosdk_le_5pct_floor'] else 'MISSED'}")
        print("  " + "; ".join(parts))
    for name, note in result.get("notes", {}).items():
        print(f"note {name}: {note}")


if __name__ == "__main__":
    sys.exit(main())
