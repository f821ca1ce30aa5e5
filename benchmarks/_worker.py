"""One measured process: one variant (bare, floor, ours, ...), driven over stdin/stdout.

    python benchmarks/_worker.py --variant ours [--ablate name,name]   [env BENCH_LAYOUT_SEED=k]

Prints ``ready <pid>`` once set up, then answers one command per stdin line:

* ``warm <scenario> <n>``  run n calls (caches, diagnosis and metric streams reach steady state),
  then ``gc.collect(); gc.freeze()`` so later collections only see per-call garbage, then n/5
  more calls (re-warm what the collection freed) -> ``ok``
* ``run <scenario> <n>``   run n calls, timed with perf_counter_ns -> ``done <ns>``
  (under callgrind the driver switches counting on before sending this line and off after the
  answer, so the count covers the n calls plus a constant handshake, removed with an n=0 run)
* ``profile <scenario> <n> <path>`` run n calls under cProfile, write pstats to path -> ``ok``
* ``spans <scenario>``     (debug, SDK variants) one call, then the exported span and metric
  points as JSON -> ``spans <json>``
* ``quit``

Anything the process wants to say goes to stderr; stdout carries only the protocol.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if os.environ.get("BENCH_SRC"):  # the driver's snapshot of src/ (before the editable install's path)
    sys.path.insert(1, os.environ["BENCH_SRC"])

warnings.simplefilter("ignore")

VARIANTS_NO_SDK = ("ours-nosdk", "floor-nosdk", "bare-nosdk")
_LAYOUT_PAD: list = []


class _Capture:
    """Span exporter used by every SDK variant: drops spans (or keeps the last few for ``spans``)."""

    def __init__(self) -> None:
        self.keep = False
        self.kept: list = []

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.keep:
            self.kept.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_providers():
    """The same SDK configuration for every variant that has one.

    SimpleSpanProcessor -> an exporter that drops the span: spans are fully built and ended and
    handed to an exporter on the calling thread, with no background thread (callgrind counts every
    thread; a BatchSpanProcessor's worker would add scheduling-dependent counts). MeterProvider with
    an InMemoryMetricReader that is never collected during the loop: recordings are aggregated
    (counter sums, explicit-bucket histogram) as in production, without export.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    exporter = type("DroppingSpanExporter", (_Capture, SpanExporter), {})()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tp)
    metrics.set_meter_provider(mp)
    return tp, mp, exporter, reader


def setup(variant: str, ablate: list[str]) -> dict:
    info: dict = {"variant": variant}
    tp = mp = exporter = reader = None
    if variant not in VARIANTS_NO_SDK:
        tp, mp, exporter, reader = make_providers()
    base = variant.replace("-nosdk", "")
    if base == "bare":
        pass
    elif base in ("floor", "floor-sendhook"):
        from _floor import instrument_floor

        instrument_floor(tp, mp, send_hook=base == "floor-sendhook")
    elif base == "ours":
        from otel_openai_scopes import OpenAIScopesInstrumentor

        kwargs = {}
        if ablate:  # alternative steps through the public seam (benchmarks/_ablations.py)
            import _ablations

            kwargs["steps"] = _ablations.steps_for(ablate)
        OpenAIScopesInstrumentor().instrument(tracer_provider=tp, meter_provider=mp, **kwargs)
    elif base == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif base == "genai-openai":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    import openai

    info["openai"] = openai.__version__
    info["sdk_imported"] = "opentelemetry.sdk" in sys.modules
    mod = sys.modules.get("otel_openai_scopes")
    if mod is not None:
        info["package_from"] = os.path.dirname(mod.__file__)
    info["python"] = sys.version.split()[0]
    return {"info": info, "exporter": exporter, "reader": reader}


def _span_dump(exporter, reader) -> dict:
    out = {"spans": [], "metrics": []}
    for s in exporter.kept:
        out["spans"].append({
            "name": s.name,
            "kind": str(s.kind),
            "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (s.attributes or {}).items()},
            "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in s.events],
            "status": str(s.status.status_code),
        })
    data = reader.get_metrics_data() if reader is not None else None
    if data is not None:
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out["metrics"].append({"scope": sm.scope.name, "name": m.name,
                                           "points": len(list(m.data.data_points))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", required=True)
    ap.add_argument("--ablate", default="")
    args = ap.parse_args()
    variant = args.variant.strip()  # padded by the driver to a fixed width: same allocations whatever the name
    ablate = [a for a in args.ablate.strip().split(",") if a]
    if os.environ.get("BENCH_GC") == "off":  # experiments only
        gc.disable()
    layout_seed = os.environ.get("BENCH_LAYOUT_SEED", "")
    if layout_seed:
        # Shift the heap before anything else is allocated: the SDK hashes typing objects whose hashes
        # involve addresses, so what collides in its caches depends on the layout. Each process of a
        # variant x scenario gets a different seed and the driver averages them (README, caveats).
        import random

        rng = random.Random(int(layout_seed))
        _LAYOUT_PAD.extend(bytearray(rng.randint(1, 2048)) for _ in range(rng.randint(50, 400)))
        _LAYOUT_PAD.extend("x" * rng.randint(1, 200) for _ in range(rng.randint(50, 2000)))
        _LAYOUT_PAD.extend((object(),) * rng.randint(1, 8) for _ in range(rng.randint(50, 2000)))
        # Shift the type version tags too: CPython caches attribute lookups in one global table indexed by
        # (a type's version tag, the name), tags are handed out in the order types are first looked up, so
        # which hot lookups collide there (and walk the MRO on every call) depends on how many types were
        # tagged before. Adding a module or a class to the instrumentation moved `stream` by ~70K
        # instructions per call this way, both ways (benchmarks/README.md, caveats).
        pads = [type(f"_LayoutPad{i}", (), {"a": i}) for i in range(rng.randint(0, 96))]
        _LAYOUT_PAD.extend(pad.a for pad in pads)
        _LAYOUT_PAD.extend(pads)
    try:
        state = setup(variant, ablate)
    except Exception as exc:  # noqa: BLE001 (any failure is reported to the driver as "n/a: reason")
        print(f"na {type(exc).__name__}: {exc}".replace("\n", " ")[:400], flush=True)
        return
    from _scenarios import make_clients, make_runner

    clients = make_clients()
    runners: dict = {}

    def runner(name: str):
        r = runners.get(name)
        if r is None:
            r = runners[name] = make_runner(name, clients)
        return r

    out = sys.stdout
    readline = sys.stdin.readline
    out.write(f"ready {os.getpid()} {json.dumps(state['info'])}\n")
    out.flush()
    perf = time.perf_counter_ns
    while True:
        line = readline()
        if not line:
            break
        cmd, _, rest = line.strip().partition(" ")
        if cmd == "run":
            name, n = rest.split()
            run = runner(name)
            n = int(n)
            t0 = perf()
            run(n)
            t1 = perf()
            out.write(f"done {t1 - t0}\n")
            out.flush()
        elif cmd == "warm":
            name, n = rest.split()
            try:
                runner(name)(int(n))
            except Exception as exc:  # noqa: BLE001
                out.write(f"na {type(exc).__name__}: {exc}".replace("\n", " ")[:400] + "\n")
                out.flush()
                continue
            # Freeze what warm-up built so later collections only see per-call garbage, then run a
            # few more calls: the collection frees weakly cached objects of the SDK (pydantic
            # parametrised generics such as SyncCursorPage[Run]) that the next call rebuilds.
            gc.collect()
            gc.freeze()
            runner(name)(max(5, int(n) // 5))
            out.write("ok\n")
            out.flush()
        elif cmd == "spans":
            exporter = state["exporter"]
            if exporter is None:
                out.write("spans {}\n")
            else:
                exporter.keep = True
                exporter.kept.clear()
                runner(rest)(1)
                exporter.keep = False
                out.write("spans " + json.dumps(_span_dump(exporter, state["reader"]), default=str) + "\n")
            out.flush()
        elif cmd == "profile":
            import cProfile

            name, n, path = rest.split(" ", 2)
            run = runner(name)
            prof = cProfile.Profile()
            prof.runcall(run, int(n))
            prof.dump_stats(path)
            out.write("ok\n")
            out.flush()
        elif cmd == "quit":
            break
        else:
            out.write(f"error unknown command {cmd!r}\n")
            out.flush()


if __name__ == "__main__":
    main()
