"""Helpers for tests/test_fleet*.py (issue 9), on top of tests/stack.py.

* ``App``: an application process (real ``openai`` SDK over its real HTTP transport, the instrumentation,
  the OpenTelemetry SDK's OTLP/gRPC exporters) run as ``python fleet_helpers.py <plan.json>``. It calls
  the fake OpenAI server until told to stop, then writes a summary: every span it exported *and the
  Collector accepted* (export result SUCCESS), its scope-error span ids and the diagnoses it saw itself.
* ``DurableJaeger``: Jaeger v2 with on-disk (badger) storage on fixed ports, so it can be stopped and
  started again without losing what it stored (the shipped stack config plus one overlay).
* ``Sink``: a second Collector (OTLP in, file exporter out) standing in for a backend.
* ``fast_rules``: a copy of the shipped alert rules with short ``for:`` and evaluation interval; the
  expressions stay exactly the shipped ones.

Processes are children of the test; each is stopped by its own pid only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack

HERE = Path(__file__).resolve()
RULES = stack.CONFIG_DIR / "alerts" / "prometheus-rules.yaml"
THREAD = "thread_fleet"
THREADS_READ = "api.threads.read"
RESTRICTED_SCOPES = ("api.model.read", "model.read")  # models.list works, threads do not


# ---------------------------------------------------------------------------------------------------
# Application processes
# ---------------------------------------------------------------------------------------------------


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
            self.popen = subprocess.Popen([sys.executable, str(HERE), str(self.plan_path)], stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full)

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


def _run_app(plan_path: str) -> None:
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


# ---------------------------------------------------------------------------------------------------
# Backends and rules
# ---------------------------------------------------------------------------------------------------


@dataclass
class DurableJaeger:
    """Jaeger v2 on fixed loopback ports with badger storage in ``workdir``: ``stop()`` then ``start()``
    again keeps everything it had stored (the in-memory store of the shipped stack config would not)."""

    bins: stack.Binaries
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    current: stack.Jaeger | None = None
    held: list[socket.socket] = field(default_factory=list)

    OVERLAY = {
        "extensions": {
            "jaeger_query": {"storage": {"traces": "durable"}},
            "jaeger_storage": {"backends": {"durable": {"badger": {
                "directories": {"keys": "${env:JAEGER_BADGER_DIR}/keys", "values": "${env:JAEGER_BADGER_DIR}/values"},
                "ephemeral": False}}}},
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "durable"}},
    }

    def start(self, timeout: float = 60.0) -> stack.Jaeger:
        assert self.bins.jaeger is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        release(self.held)
        if not self.ports:
            self.ports = {n: stack.free_port() for n in ("grpc", "http", "qhttp", "qgrpc", "health")}
        p = self.ports
        overlay = self.workdir / "jaeger-durable.yaml"
        overlay.write_text(yaml.safe_dump(self.OVERLAY, sort_keys=False))
        env = stack.jaeger_env(p["grpc"], p["http"], p["qhttp"], p["qgrpc"], p["health"])
        env["JAEGER_BADGER_DIR"] = str(self.workdir / "badger")
        proc = stack._spawn(f"jaeger-{int(time.time() * 1000)}", [str(self.bins.jaeger), "--config",
                            str(stack.JAEGER_CONFIG), "--config", str(overlay)], self.workdir, env)
        stack._wait_healthy(proc, f"http://127.0.0.1:{p['health']}/status", timeout)
        stack._wait_healthy(proc, f"http://127.0.0.1:{p['qhttp']}/api/services", timeout)
        self.current = stack.Jaeger(proc, f"127.0.0.1:{p['grpc']}", f"http://127.0.0.1:{p['http']}",
                                    f"http://127.0.0.1:{p['qhttp']}")
        return self.current

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def stop(self, hold_ports: bool = False) -> None:
        """Stop Jaeger; with ``hold_ports`` its ports stay reserved (bound, not listening: connections are
        refused, as from a stopped server) so nothing else on the machine takes them before ``start()``."""
        if self.current is not None:
            self.current.stop()
        if hold_ports:
            self.held = [hold(p) for p in self.ports.values()]


def hold(port: int = 0) -> socket.socket:
    """A loopback port reserved by a bound socket that does not listen (connecting is refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's TIME_WAIT connections
    s.bind(("127.0.0.1", port))
    return s


def release(socks: list[socket.socket]) -> None:
    while socks:
        socks.pop().close()


@dataclass
class Sink(stack._Managed):
    """A Collector standing in for an OTLP backend: every span it receives is written as OTLP JSON lines."""

    process: stack.Process
    otlp_grpc: str
    path: Path

    @classmethod
    def start(cls, bins: stack.Binaries, workdir: Path, name: str = "sink", port: int = 0) -> Sink:
        assert bins.otelcol is not None
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or stack.free_port()
        health = stack.free_port()
        out = workdir / f"{name}.jsonl"
        cfg = {
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}},
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
            "exporters": {"file": {"path": str(out), "flush_interval": "100ms"}},
            "service": {"extensions": ["health_check"],
                        "telemetry": {"metrics": {"level": "none"}},
                        "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        }
        cfg_path = workdir / f"{name}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        proc = stack._spawn(f"{name}-{int(time.time() * 1000)}", [str(bins.otelcol), f"--config={cfg_path}"], workdir)
        stack._wait_healthy(proc, f"http://127.0.0.1:{health}/", 30)
        return cls(proc, f"127.0.0.1:{port}", out)

    def spans(self) -> list[dict[str, Any]]:
        return otlp_json_spans(self.path)


def otlp_json_spans(path: Path) -> list[dict[str, Any]]:
    """Spans of a file exporter's OTLP JSON lines: [{"trace_id", "span_id", "name", "attributes"}]."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # a line being written
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    attrs = {a["key"]: next(iter(a["value"].values()), None) for a in s.get("attributes", [])}
                    out.append({"trace_id": s["traceId"], "span_id": s["spanId"], "name": s["name"],
                                "attributes": attrs})
    return out


def require_promtool() -> str:
    """promtool (Debian's prometheus package), or skip locally / fail under CI=true."""
    import shutil

    import pytest

    path = shutil.which("promtool") or ("/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("promtool missing, but CI is set: .ci/run must install it (apt-get install -y prometheus)")
    pytest.skip("promtool missing: apt-get install -y prometheus")


def fast_rules(workdir: Path, for_seconds: int = 3) -> Path:
    """The shipped rules with ``interval: 1s`` and every ``for:`` shortened; expressions untouched."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{for_seconds}s"
    out = Path(workdir) / "prometheus-rules.fast.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def shipped_expr(alert: str) -> str:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                return str(rule["expr"])
    raise KeyError(alert)


if __name__ == "__main__":
    _run_app(sys.argv[1])


# ---------------------------------------------------------------------------------------------------
# The shipped alerting path: Prometheus as shipped (scrape 10 s, the rules file untouched) and Alertmanager
# ---------------------------------------------------------------------------------------------------

ALERTMANAGER_CONFIG = RULES.parent / "alertmanager.yaml"
SCRAPE_INTERVAL = "10s"  # what compose/prometheus.yml, stack.sh and the Kubernetes examples ship
RUNBOOK_URL = "https://runbooks.example.com/otel-openai-scopes/RUNBOOK.md"


def alertmanager_binary() -> str:
    import shutil

    import pytest

    for cand in ("/usr/bin/prometheus-alertmanager", shutil.which("alertmanager") or ""):
        if cand and os.access(cand, os.X_OK):
            return cand
    if os.environ.get("CI"):
        pytest.fail("alertmanager missing, but CI is set: scripts/stack.sh build installs prometheus-alertmanager")
    pytest.skip("alertmanager missing: bash scripts/stack.sh build (or apt-get install prometheus-alertmanager)")


@dataclass
class Alertmanager(stack._Managed):
    """Alertmanager 0.25 with the shipped collector-config/alerts/alertmanager.yaml, clustering off."""

    process: stack.Process
    url: str

    @classmethod
    def start(cls, workdir: Path) -> Alertmanager:
        workdir.mkdir(parents=True, exist_ok=True)
        port = stack.free_port()
        argv = [alertmanager_binary(), f"--config.file={ALERTMANAGER_CONFIG}", f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
        proc = stack._spawn("alertmanager", argv, workdir)
        stack._wait_healthy(proc, f"http://127.0.0.1:{port}/-/ready", 60)
        return cls(proc, f"http://127.0.0.1:{port}")

    def groups(self) -> list[dict[str, Any]]:
        return list(json.loads(stack.http_get(self.url + "/api/v2/alerts/groups")))


def shipped_prometheus(bins: stack.Binaries, workdir: Path, scrape: Sequence[str],
                       alertmanager: str | None = None) -> stack.Prometheus:
    """Prometheus configured as shipped: the rules file untouched (its own group intervals and keep_firing_for),
    scrape every 10 s, the runbook external label, alerts sent to ``alertmanager``."""
    assert bins.prometheus is not None
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = stack.prometheus_config(scrape, [RULES], SCRAPE_INTERVAL, SCRAPE_INTERVAL)
    cfg["global"]["external_labels"] = {"openai_scopes_runbook_url": RUNBOOK_URL}
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.split("//", 1)[1]]}]}]}
    port = stack.free_port()
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    argv = [str(bins.prometheus), f"--config.file={path}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    proc = stack._spawn("prometheus", argv, workdir)
    stack._wait_healthy(proc, f"http://127.0.0.1:{port}/-/ready", 60)
    return stack.Prometheus(proc, f"http://127.0.0.1:{port}")


def active_at(alert: dict[str, Any]) -> float:
    """An alert's activeAt (Prometheus' RFC 3339 with nanoseconds) as epoch seconds."""
    import re
    from datetime import datetime, timezone

    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", alert["activeAt"])
    assert m, alert["activeAt"]
    base = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + float("0." + (m[2] or "0"))


def project_scoped_fake() -> Any:
    """The project's fake OpenAI server, plus scopes a key lacks only when its client sends a given
    ``OpenAI-Project`` (the key holds every scope in one project and not in another). The fake server notes each
    request (``note_request``) before it decides the missing scopes, in the same handler thread."""
    from otel_openai_scopes.tools.fake_server import FakeOpenAI

    class ProjectScopedFake(FakeOpenAI):
        def __init__(self) -> None:
            super().__init__()
            self.denied: dict[tuple[str, str], set[str]] = {}
            self.current = threading.local()

        def deny(self, key: str, project: str, scopes: Sequence[str]) -> None:
            self.denied[(key, project)] = set(scopes)

        def note_request(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> None:
            self.current.project = headers.get("openai-project", "")
            super().note_request(method, target, body, headers)

        def missing_scopes(self, key: str, grant: Any, endpoint: Any, now: float | None = None) -> list[str]:
            missing = super().missing_scopes(key, grant, endpoint, now)
            denied = self.denied.get((key, getattr(self.current, "project", "")), set())
            return missing + [s for s in endpoint.scopes if s in denied and s not in missing]

    return ProjectScopedFake()
