"""Collector throughput: CPU per span through base.yaml against a plain OTLP-in/OTLP-out Collector.

Not a test. Both Collectors are the same binary (the project's minimal distribution, tests/support/stack finds
it), both export over OTLP/gRPC to one sink Collector (debug exporter, basic verbosity), and both are
loaded alternately in the same run by the same generator, so the ratio compares like with like:

* load: pre-encoded OTLP/protobuf ExportTraceServiceRequests of 100 spans each, POSTed to the Collector's
  OTLP/HTTP receiver from a few Python processes over keep-alive connections (closed loop). The spans are
  real: made by the instrumentation itself around real openai SDK calls to the fake OpenAI server (30%
  scope errors: 401 "Missing scopes" on runs/files/models with their diagnoses; 70% healthy chat,
  models, files, runs calls), then cloned with fresh trace and span ids;
* cost: CPU time (utime + stime from /proc/<pid>/stat, all threads) of the Collector under test while it
  receives and exports a phase's spans, divided by the spans it accepted: seconds of one core per span,
  so "spans per second per core" = 1 / that. Robust on a shared machine, unlike wall-clock rates;
* peak RSS: VmHWM of each Collector at the end.

    .venv/bin/python benchmarks/collector_throughput.py              # ~2 min: 3 rounds x 3 pipelines x 8 s
    .venv/bin/python benchmarks/collector_throughput.py --ablations   # + base.yaml with single parts removed
    .venv/bin/python benchmarks/collector_throughput.py --compare main  # + base.yaml as committed at a git ref

Prints a table and writes benchmarks/results/collector_throughput.json (gitignored).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's own tests.support, not an installed package
from tests.support import stack  # noqa: E402  (finds and starts the real binaries)

SPANS_PER_REQUEST = 100
DISTINCT_REQUESTS = 40
SCOPE_ERROR_SHARE = 0.30
PLAIN_CONFIG = {
    # The plain pipeline: OTLP in, OTLP out, with base.yaml's exporter settings; nothing in between.
    "extensions": {"health_check": {}},
    "receivers": {"otlp": {"protocols": {"grpc": {}, "http": {}}}},
    "exporters": {"otlp_grpc/main": {"endpoint": "${env:MAIN_OTLP_ENDPOINT}", "tls": {"insecure": True},
                                     "timeout": "10s", "sending_queue": {"batch": {}},
                                     "retry_on_failure": {"enabled": True, "max_elapsed_time": "300s"}}},
    "service": {"extensions": ["health_check"],
                "telemetry": {"metrics": {"level": "normal"}},
                "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc/main"]}}},
}
# base.yaml's main exporter talks plaintext to the local sink (every other setting as shipped).
BASE_EXTRA = {"exporters": {"otlp_grpc/main": {"tls": {"insecure": True}}}}
QUIET = "base.yaml ANOMALY_LOG_VERBOSITY=detailed"  # the debugging level (the default until 2026-12-01)
REDACTION = "redaction/openai"
KEY_NAMES = "redaction/key_names"
#: The key-name pattern shipped until 2026-12-01 (same keys as the current one, tests/test_collector_config.py).
OLD_KEY_PATTERN = ("(?i)^(.*[._-])?(api[._-]?key|x-api-key|authorization|proxy-authorization|secret|password|passwd|"
                   "access[._-]?token|token)$$")  # "$$": a config file


def _drop_processor(pipeline: str, proc: str) -> Any:
    def edit(cfg: dict) -> None:
        cfg["service"]["pipelines"][pipeline]["processors"].remove(proc)
    return edit


def _no_key_names(cfg: dict) -> None:
    for pipe in cfg["service"]["pipelines"].values():
        if KEY_NAMES in pipe.get("processors", []):
            pipe["processors"].remove(KEY_NAMES)


def _one_processor(pattern: str | None) -> Any:
    """The shape shipped until 2026-12-01: the key-name pattern in redaction/openai, on every key."""
    def edit(cfg: dict) -> None:
        current = cfg["processors"][KEY_NAMES]["blocked_key_patterns"]
        _no_key_names(cfg)
        cfg["processors"][REDACTION]["blocked_key_patterns"] = [pattern] if pattern else current
    return edit


def _no_branch(cfg: dict) -> None:
    pipes = cfg["service"]["pipelines"]
    pipes["traces"]["exporters"] = ["otlp_grpc/main"]
    del pipes["traces/scope_errors"], pipes["metrics/scope_errors"]


def _strings_only(cfg: dict) -> None:
    """redaction/openai as shipped until 2026-12-02: string values only (lists and maps unchecked)."""
    del cfg["processors"][REDACTION]["redact_all_types"]


def _log(verbosity: str) -> Any:
    def edit(cfg: dict) -> None:
        cfg["exporters"]["debug/anomalies"]["verbosity"] = verbosity
    return edit


# --ablations: base.yaml with one part taken out (or changed), to say where its cost is.
ABLATIONS = {
    "- redaction/openai": _drop_processor("traces", REDACTION),
    "- redaction/key_names": _no_key_names,
    "one redaction processor, current pattern": _one_processor(None),
    "one redaction processor, old pattern": _one_processor(OLD_KEY_PATTERN),
    "- scope-error branch": _no_branch,
    "debug/anomalies normal": _log("normal"),
    "- transform/scrub": _drop_processor("traces", "transform/scrub"),
    "redaction/openai on strings only": _strings_only,
}


# ---------------------------------------------------------------------------------------------------
# Realistic spans, from the instrumentation itself
# ---------------------------------------------------------------------------------------------------


def _real_spans(n_error: int, n_ok: int) -> tuple[list[Any], list[Any]]:
    """(scope-error spans, healthy spans) as the instrumentation records them around real SDK calls."""
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_openai_scopes import OpenAIScopesInstrumentor
    from otel_openai_scopes import attributes as A
    from otel_openai_scopes.tools.fake_server import FakeOpenAI

    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

    def key() -> str:
        return "sk-proj-" + "".join(rng.choice(alphabet) for _ in range(48))

    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "checkout", "service.instance.id": "checkout-7f9c",
                                                  "deployment.environment.name": "prod"}))
    tp.add_span_processor(SimpleSpanProcessor(memory))
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=MeterProvider(), capture_key_hint=True)
    try:
        with FakeOpenAI() as fake:
            good, restricted, flappy = key(), key(), key()
            fake.grant(good)
            fake.grant(restricted, scopes=["api.model.read", "model.read"])
            fake.grant(flappy)
            c_good = openai.OpenAI(api_key=good, base_url=fake.base_url, max_retries=0)
            c_restricted = openai.OpenAI(api_key=restricted, base_url=fake.base_url, max_retries=0)
            c_flappy = openai.OpenAI(api_key=flappy, base_url=fake.base_url, max_retries=0)
            c_flappy.beta.threads.runs.list("thread_abc")
            fake.lose_scope(flappy, "api.threads.read", duration=3600)
            hello = [{"role": "user", "content": "hi"}]
            ok_calls = [lambda: c_good.chat.completions.create(model="gpt-4o-mini", messages=hello),
                        lambda: c_good.models.list(), lambda: c_good.files.list(),
                        lambda: c_good.beta.threads.runs.list("thread_abc")]
            err_calls = [lambda: c_restricted.beta.threads.runs.list("thread_abc"), lambda: c_restricted.files.list(),
                         lambda: c_flappy.beta.threads.runs.list("thread_abc"),
                         lambda: c_restricted.chat.completions.create(model="gpt-4o-mini", messages=[])]
            for i in range(n_ok):
                ok_calls[i % len(ok_calls)]()
            for i in range(n_error):
                try:
                    err_calls[i % len(err_calls)]()
                except openai.APIStatusError:
                    pass
    finally:
        inst.uninstrument()
    spans = list(memory.get_finished_spans())
    errors = [s for s in spans if (s.attributes or {}).get(A.SCOPE_ERROR)]
    healthy = [s for s in spans if not (s.attributes or {}).get(A.SCOPE_ERROR)]
    assert len(errors) >= n_error and healthy, (len(errors), len(healthy))
    return errors, healthy


def build_requests(seed: int = 1) -> tuple[list[bytes], float]:
    """DISTINCT_REQUESTS encoded requests of SPANS_PER_REQUEST spans; returns them and the scope-error share."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    errors, healthy = _real_spans(40, 60)
    rng = random.Random(seed)
    bodies, n_err, n_all = [], 0, 0
    for _ in range(DISTINCT_REQUESTS):
        picks = [rng.choice(errors) if rng.random() < SCOPE_ERROR_SHARE else rng.choice(healthy)
                 for _ in range(SPANS_PER_REQUEST)]
        req: ExportTraceServiceRequest = encode_spans(picks)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    sp.trace_id = rng.randbytes(16)
                    sp.span_id = rng.randbytes(8)
                    sp.ClearField("parent_span_id")
                    n_all += 1
                    n_err += any(a.key == "openai.scope_error" and a.value.bool_value for a in sp.attributes)
        bodies.append(req.SerializeToString())
    return bodies, n_err / n_all


# ---------------------------------------------------------------------------------------------------
# Load generator (separate processes) and measurements
# ---------------------------------------------------------------------------------------------------


def _post_loop(args: tuple[str, list[bytes], float, int]) -> tuple[int, int]:
    """Worker: POST bodies round-robin to http://host:port/v1/traces until the deadline. (spans ok, errors)."""
    addr, bodies, deadline, offset = args
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    ok = err = 0
    i = offset
    while time.time() < deadline:
        body = bodies[i % len(bodies)]
        i += 1
        try:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                ok += SPANS_PER_REQUEST
            else:
                err += 1
                time.sleep(0.01)
        except (OSError, http.client.HTTPException):
            err += 1
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()
    return ok, err


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _metric(col: stack.Collector, name: str) -> float:
    return col.own_metric(name)


def _drained(col: stack.Collector) -> bool:
    txt = stack.http_get(col.telemetry_url).decode()
    return all(float(line.rsplit(" ", 1)[1]) == 0 for line in txt.splitlines()
               if line.startswith("otelcol_exporter_queue_size{"))


@dataclass
class Phase:
    pipeline: str
    spans: int  # accepted by the Collector under test
    cpu_s: float
    wall_s: float
    errors: int

    @property
    def cpu_us_per_span(self) -> float:
        return self.cpu_s / self.spans * 1e6

    @property
    def spans_per_cpu_s(self) -> float:
        return self.spans / self.cpu_s


def run_phase(pool: Any, col: stack.Collector, name: str, bodies: list[bytes], seconds: float, workers: int) -> Phase:
    addr = col.otlp_http.replace("http://", "")
    acc0, cpu0, t0 = _metric(col, "otelcol_receiver_accepted_spans"), cpu_seconds(col.process.pid), time.time()
    deadline = t0 + seconds
    results = pool.map(_post_loop, [(addr, bodies, deadline, w * 7) for w in range(workers)])
    stack.wait_until(lambda: _drained(col), timeout=60, interval=0.1, what=f"{name} exporter queue drained")
    time.sleep(0.3)  # the last batch's export finishes after the queue empties
    cpu1, t1 = cpu_seconds(col.process.pid), time.time()
    acc1 = _metric(col, "otelcol_receiver_accepted_spans")
    sent = sum(ok for ok, _ in results)
    accepted = int(acc1 - acc0)
    assert accepted >= sent, (accepted, sent)
    return Phase(name, accepted, cpu1 - cpu0, t1 - t0, sum(e for _, e in results))


def sink_config() -> dict[str, Any]:
    return {
        "extensions": {"health_check": {}},
        "receivers": {"otlp": {"protocols": {"grpc": {}, "http": {}}}},
        "exporters": {"debug": {"verbosity": "basic", "sampling_initial": 1, "sampling_thereafter": 1000}},
        "service": {"extensions": ["health_check"], "telemetry": {"metrics": {"level": "none"}},
                    "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]},
                                  "metrics": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }


def main(argv: list[str]) -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="load per phase")
    ap.add_argument("--rounds", type=int, default=3, help="alternating plain/base phases")
    ap.add_argument("--workers", type=int, default=3, help="load generator processes")
    ap.add_argument("--ablations", action="store_true",
                    help="also measure base.yaml with single parts removed (5 more Collectors, ~2x longer)")
    ap.add_argument("--compare", metavar="GIT_REF", action="append", default=[],
                    help="also measure base.yaml as committed at this git ref (before/after in one run, same load); "
                         "repeatable")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "collector_throughput.json"))
    args = ap.parse_args(argv)

    bins = stack.find_binaries()
    if bins.otelcol is None:
        print("no Collector binary: run `bash scripts/stack.sh build` first", file=sys.stderr)
        return 2
    bodies, share = build_requests()
    work = Path(tempfile.mkdtemp(prefix="collector-throughput-"))
    plain_cfg = work / "plain.yaml"
    plain_cfg.write_text(yaml.safe_dump(PLAIN_CONFIG, sort_keys=False))
    sink_cfg = work / "sink.yaml"
    sink_cfg.write_text(yaml.safe_dump(sink_config(), sort_keys=False))
    started: list[stack.Collector] = []
    try:
        sink = stack.Collector.start(bins, work / "sink", [sink_cfg], name="sink")
        started.append(sink)
        env = {"MAIN_OTLP_ENDPOINT": sink.otlp_grpc}
        base = stack.Collector.start(bins, work / "base", ["base.yaml"], env=env, extra=BASE_EXTRA, name="base")
        quiet = stack.Collector.start(bins, work / "quiet", ["base.yaml"], extra=BASE_EXTRA, name="quiet",
                                      env={**env, "ANOMALY_LOG_VERBOSITY": "detailed"})
        plain = stack.Collector.start(bins, work / "plain", [plain_cfg], env=env, name="plain")
        started += [base, quiet, plain]
        cols = {"plain": plain, "base.yaml": base, QUIET: quiet}
        for i, ref in enumerate(args.compare):
            ref_cfg = work / f"base-ref{i}.yaml"
            ref_cfg.write_text(subprocess.run(["git", "show", f"{ref}:collector-config/base.yaml"], cwd=ROOT,
                                              check=True, capture_output=True, text=True).stdout)
            cols[f"base.yaml @{ref}"] = stack.Collector.start(bins, work / f"ref{i}", [ref_cfg], env=env,
                                                              extra=BASE_EXTRA, name=f"ref{i}")
            started.append(cols[f"base.yaml @{ref}"])
        if args.ablations:
            shipped = yaml.safe_load((stack.CONFIG_DIR / "base.yaml").read_text())
            for i, (label, edit) in enumerate(ABLATIONS.items()):
                cfg = yaml.safe_load(yaml.safe_dump(shipped))
                edit(cfg)
                path = work / f"ablation{i}.yaml"
                path.write_text(yaml.safe_dump(cfg, sort_keys=False))
                cols[label] = stack.Collector.start(bins, work / f"ablation{i}", [path], env=env, extra=BASE_EXTRA,
                                                    name=f"ablation{i}")
                started.append(cols[label])
        phases: list[Phase] = []
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            for col in cols.values():
                run_phase(pool, col, "warmup", bodies, 2, args.workers)
            for r in range(args.rounds):
                order = list(cols.items())
                for name, col in (order if r % 2 == 0 else order[::-1]):
                    phases.append(run_phase(pool, col, name, bodies, args.seconds, args.workers))
        rss = {name: peak_rss_mib(col.process.pid) for name, col in cols.items()}
        dumped = (work / "quiet" / "quiet.log").read_text(errors="replace").count("Span #")
    finally:
        for col in reversed(started):
            col.stop()

    def med(name: str, attr: str) -> float:
        return statistics.median(getattr(p, attr) for p in phases if p.pipeline == name)

    names = list(cols)
    ratio = med("base.yaml", "cpu_us_per_span") / med("plain", "cpu_us_per_span")
    ratio_quiet = med(QUIET, "cpu_us_per_span") / med("plain", "cpu_us_per_span")
    print(f"spans: {SPANS_PER_REQUEST} per request, {share:.0%} scope errors, {args.workers} generator processes, "
          f"{args.rounds} rounds x {args.seconds:.0f} s per pipeline")
    print(f"{'pipeline':<34} {'spans':>9} {'CPU s':>7} {'us CPU/span':>12} {'spans/s/core':>13} "
          f"{'spans/s wall':>13} {'peak RSS MiB':>13}")
    for name in names:
        ps = [p for p in phases if p.pipeline == name]
        print(f"{name:<34} {sum(p.spans for p in ps):>9} {sum(p.cpu_s for p in ps):>7.1f} "
              f"{med(name, 'cpu_us_per_span'):>12.2f} {med(name, 'spans_per_cpu_s'):>13.0f} "
              f"{statistics.median(p.spans / p.wall_s for p in ps):>13.0f} {rss[name]:>13.0f}")
    print(f"ratio base.yaml / plain, CPU per span (median of rounds): {ratio:.2f}x (goal <= 2x); "
          f"with ANOMALY_LOG_VERBOSITY=detailed: {ratio_quiet:.2f}x")
    compared = {ref: med(f"base.yaml @{ref}", "cpu_us_per_span") / med("plain", "cpu_us_per_span")
                for ref in args.compare}
    for ref, value in compared.items():
        print(f"ratio base.yaml @{ref} / plain, same run: {value:.2f}x (working tree: {ratio:.2f}x)")
    print(f"debug/anomalies (detailed) printed {dumped} scope-error spans in full during the run")
    out = {"spans_per_request": SPANS_PER_REQUEST, "scope_error_share": share, "workers": args.workers,
           "seconds": args.seconds, "rounds": args.rounds, "phases": [asdict(p) for p in phases],
           "cpu_us_per_span": {n: med(n, "cpu_us_per_span") for n in names},
           "ratio": ratio, "ratio_detailed_log": ratio_quiet, "ratio_at_ref": compared, "peak_rss_mib": rss,
           "detailed_spans_logged": dumped,
           "errors": sum(p.errors for p in phases), "otelcol": str(bins.otelcol)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
