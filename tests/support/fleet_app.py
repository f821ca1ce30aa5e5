"""Application processes for the fleet tests: the real ``openai`` SDK over its real HTTP transport, the
instrumentation and the OpenTelemetry SDK's OTLP/gRPC exporters, in a process of its own per app.

``App(plan)`` runs ``python -m tests.support.fleet_app <plan.json>``: it calls the fake OpenAI server until told to
stop (a stop file), then writes a summary: every span it exported *and the Collector accepted* (export result
SUCCESS), its scope-error span ids and the diagnoses it saw itself. Each app is stopped by its own pid only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stack.paths import ROOT

THREAD = "thread_fleet"
THREADS_READ = "api.threads.read"
RESTRICTED_SCOPES = ("api.model.read", "model.read")  # models.list works, threads do not


@dataclass
class Call:
    """One kind of call an app makes in every round: ``op`` is ``runs`` (GET /v1/threads/{id}/runs,
    needs api.threads.read), ``messages`` (GET /v1/threads/{id}/messages, the same scope) or ``models``
    (GET /v1/models); ``key`` names an entry of the plan's keys (and of its ``projects``)."""

    key: str
    op: str


@dataclass
class Plan:
    base_url: str
    otlp: str  # host:port of the Collector's OTLP/gRPC receiver
    service: str
    instance: str
    keys: dict[str, str]
    calls: list[Call]
    workdir: str
    interval: float = 0.1  # pause between rounds
    rounds: int = 0  # 0: until the stop file exists
    trace_calls: int = 1  # SDK calls per trace; > 1 wraps each round's calls in a parent "job" span
    scope_error_every: int = 0  # with trace_calls > 1: every n-th trace uses the "bad" key (0: never)
    metric_interval_ms: int = 500  # the SDK's metric export interval (OTEL_METRIC_EXPORT_INTERVAL)
    projects: dict[str, str] = field(default_factory=dict)  # key name -> OpenAI-Project its client sends
    swap: dict[str, str] = field(default_factory=dict)  # key name -> key name its client's api_key becomes ...
    swap_after: int = 0  # ... after this many rounds (a shared client mutated in place: client_mutated)


@dataclass
class AppSummary:
    exported_spans: int  # accepted by the Collector (export result SUCCESS)
    failed_spans: int  # export failed (not accepted)
    scope_error_spans: list[str]  # span ids (hex) of accepted scope-error spans
    traces: dict[str, int]  # accepted spans per trace id (hex)
    scope_error_traces: list[str]
    diagnoses: dict[str, dict[str, int]]  # key name -> diagnosis label -> count, from its own spans
    calls: dict[str, dict[str, int]]  # "key/op" -> {"ok": n, "error": n}
    first_scope_error: dict[str, float] = field(default_factory=dict)  # key name -> end (epoch s) of its first one


class App:
    """An application process started with a plan; ``stop()`` asks it to finish (stop file), waits for
    its final export and returns its summary."""

    def __init__(self, plan: Plan, env: Mapping[str, str] | None = None) -> None:
        self.plan = plan
        work = Path(plan.workdir)
        work.mkdir(parents=True, exist_ok=True)
        self.plan_path = work / f"app-{plan.instance}.json"
        self.stop_path = work / f"app-{plan.instance}.stop"
        self.summary_path = work / f"app-{plan.instance}.summary.json"
        self.log_path = work / f"app-{plan.instance}.log"
        doc = dict(plan.__dict__)
        doc["calls"] = [c.__dict__ for c in plan.calls]
        self.plan_path.write_text(json.dumps(doc))
        full = dict(os.environ)
        full.update({"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_EXPORT_TIMEOUT": "5000",
                     "OTEL_EXPORTER_OTLP_TIMEOUT": "5"})
        full.update(env or {})
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen([sys.executable, "-m", __name__, str(self.plan_path)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full, cwd=ROOT)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float = 120.0) -> AppSummary:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise AssertionError(f"app {self.plan.instance} did not finish:\n{self.log()[-3000:]}") from None
        assert self.popen.returncode == 0, f"app {self.plan.instance} failed:\n{self.log()[-3000:]}"
        return AppSummary(**json.loads(self.summary_path.read_text()))

    def stop(self, timeout: float = 120.0) -> AppSummary:
        self.stop_path.write_text("stop")
        return self.wait(timeout)

    def kill(self) -> None:
        """Only for clean-up after a failed test: this child's pid, nothing else."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(5)


def run_app(plan_path: str) -> None:
    """The body of an application process (runs in the child)."""
    import openai
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from otel_openai_scopes import OpenAIScopesInstrumentor
    from otel_openai_scopes import attributes as A

    doc = json.loads(Path(plan_path).read_text())
    doc["calls"] = [Call(**c) for c in doc["calls"]]
    plan = Plan(**doc)
    work = Path(plan.workdir)
    stop_path = work / f"app-{plan.instance}.stop"
    fp_to_name: dict[str, str] = {}
    from otel_openai_scopes.fingerprint import fingerprint

    for name, key in plan.keys.items():
        fp_to_name[fingerprint(key)] = name

    lock = threading.Lock()
    summary = AppSummary(0, 0, [], {}, [], {}, {})

    class Recording(SpanExporter):
        """The real OTLP exporter; records which spans the Collector accepted."""

        def __init__(self) -> None:
            self.inner = OTLPSpanExporter(endpoint=plan.otlp, insecure=True)

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result = self.inner.export(spans)
            with lock:
                if result is not SpanExportResult.SUCCESS:
                    summary.failed_spans += len(spans)
                    return result
                summary.exported_spans += len(spans)
                for s in spans:
                    tid = format(s.context.trace_id, "032x")
                    summary.traces[tid] = summary.traces.get(tid, 0) + 1
                    attrs = s.attributes or {}
                    if attrs.get(A.SCOPE_ERROR):
                        summary.scope_error_spans.append(format(s.context.span_id, "016x"))
                        summary.scope_error_traces.append(tid)
                        name = fp_to_name.get(str(attrs.get(A.KEY_FINGERPRINT)), "?")
                        end = s.end_time / 1e9
                        summary.first_scope_error[name] = min(summary.first_scope_error.get(name, end), end)
                        per = summary.diagnoses.setdefault(name, {})
                        label = str(attrs.get(A.DIAGNOSIS))
                        per[label] = per.get(label, 0) + 1
            return result

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    resource = Resource.create({"service.name": plan.service, "service.instance.id": plan.instance})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(Recording(), max_queue_size=20000, schedule_delay_millis=200))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=plan.otlp, insecure=True),
                                           export_interval_millis=plan.metric_interval_ms)
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp)
    tracer = tp.get_tracer("fleet-app")
    clients = {name: openai.OpenAI(api_key=key, base_url=plan.base_url, max_retries=0,
                                   project=plan.projects.get(name))
               for name, key in plan.keys.items()}

    def call(c: Call) -> None:
        client = clients[c.key]
        tally = summary.calls.setdefault(f"{c.key}/{c.op}", {"ok": 0, "error": 0})
        try:
            if c.op == "runs":
                client.beta.threads.runs.list(THREAD)
            elif c.op == "messages":
                client.beta.threads.messages.list(THREAD)
            else:
                client.models.list()
            tally["ok"] += 1
        except openai.APIStatusError:
            tally["error"] += 1

    n = 0
    while True:
        if plan.swap and n == plan.swap_after:
            for name, other in plan.swap.items():
                clients[name].api_key = plan.keys[other]  # the app bug: a shared client mutated in place
        if plan.rounds and n >= plan.rounds:
            break
        if not plan.rounds and stop_path.exists():
            break
        if plan.trace_calls > 1:
            bad = plan.scope_error_every and n % plan.scope_error_every == 0
            with tracer.start_as_current_span("job", kind=trace.SpanKind.INTERNAL):
                for i in range(plan.trace_calls):
                    c = plan.calls[1] if bad and i == plan.trace_calls - 1 else plan.calls[0]
                    call(c)
        else:
            for c in plan.calls:
                call(c)
        n += 1
        if plan.interval:
            time.sleep(plan.interval)
    inst.uninstrument()
    tp.shutdown()
    mp.shutdown()
    (work / f"app-{plan.instance}.summary.json").write_text(json.dumps(summary.__dict__))


if __name__ == "__main__":
    run_app(sys.argv[1])
