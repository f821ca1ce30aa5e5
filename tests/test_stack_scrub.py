"""The shipped scrub on the real Collector v0.161.0 (collector-config/base.yaml + jaeger.yaml), attacked where the
redaction processor used to stop looking (issue 16, item 1).

A hostile span, metric and log, built as raw OTLP so that every value type the protocol has can carry a key: string
lists (``process.command_args`` as Node/Java process detectors record it, ``openai.scope.missing``), maps nested in
lists nested in maps, the fingerprint's own name on the resource, the instrumentation scope, span events, data points
and log records, a JWT in span, event and metric names, in the status message, trace state, metric description and
unit, exemplar attributes, log bodies (string, map, list) and log event names. Every byte every exporter sent is then
scanned for any 8-character piece of any key: the file exporter (added to every pipeline by the test), the
``debug/anomalies`` log at ``detailed``, Jaeger's ``/api/v3`` (OTLP JSON, every field) and v1 APIs, and every
Prometheus series, label value and metadata entry. Data that carries no key keeps its types (a clean string list
stays a list) and the fingerprint and hint stay intact.

The span-derived counter is fed only from scrubbed spans: its labels are scope names by the SDK's grammar, bounded
diagnoses and fingerprint shapes, and its label sets are capped (``DERIVED_MAX_SERIES``).

Binaries: tests/stack.py (`bash scripts/stack.sh build`); missing -> skip, with CI set -> fail.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import collector_helpers as h
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Exemplar,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts
from otel_openai_scopes.fingerprint import hint
from otel_openai_scopes.scope_names import is_scope_name
from tests.support import stack
from tests.support.keys import make_key

SERVICE = "scrub-hostile-app"
CAP_SERVICE = "scrub-cap-app"
READ = "api.threads.read"
FINGERPRINT = "0123456789abcdef"
DERIVED = "openai_client_scope_errors_spans_total"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


KEY = make_key()  # sk-proj-...
JWT = ".".join((_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(secrets.token_bytes(45)), _b64(secrets.token_bytes(60))))
BEARER = make_key(prefix="", n=40)  # an opaque token, recognisable only after "Bearer "
KEY_HINT = hint(KEY)


# ---------------------------------------------------------------------------------------------------
# Raw OTLP: every value type the protocol has
# ---------------------------------------------------------------------------------------------------


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=attrs(v)))
    return AnyValue(string_value=str(v))


def attrs(d: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in d.items()]


def hostile_resource(service: str) -> Resource:
    return Resource(attributes=attrs({
        "service.name": service,
        # how Node's and Java's process detectors record a command line: a string list
        "process.command_args": ["node", "server.js", f"--api-key={KEY}"],
        A.KEY_FINGERPRINT: KEY,  # the exempt name, on the resource
        "app.config": {"nested": {"list": [{"auth": JWT}], "note": f"Bearer {BEARER}"}, "port": 8080},
    }))


def hostile_scope() -> InstrumentationScope:
    return InstrumentationScope(name=f"lib-{KEY}", version=JWT, attributes=attrs({A.KEY_FINGERPRINT: [KEY]}))


def _id(n: int) -> bytes:
    return secrets.token_bytes(n)


def hostile_spans(trace_id: bytes) -> list[Span]:
    def span(name: str, attributes: dict[str, Any], **kw: Any) -> Span:
        return Span(trace_id=trace_id, span_id=_id(8), name=name, kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=time.time_ns() - 5_000_000, end_time_unix_nano=time.time_ns(),
                    attributes=attrs(attributes), **kw)

    return [
        # 1. a scope error with keys everywhere the redaction processor used to skip
        span(f"GET /v1/threads {JWT}", {
            A.SCOPE_ERROR: True,
            A.SCOPE_MISSING: [KEY, READ],  # a key as the first "missing scope": the derived label's source
            A.KEY_FINGERPRINT: FINGERPRINT,
            A.KEY_HINT: KEY_HINT,
            A.DIAGNOSIS: verdicts.UNKNOWN,
            "process.command_args": ["java", "-jar", "app.jar", f"--openai.key={KEY}"],
            "app.map": {"key": KEY, "deeper": {"list": [JWT, {"x": f"Bearer {BEARER}"}]}},
            "app.list_of_maps": [{"a": JWT}, {"b": [KEY]}],
            "app.numbers": [1, 2, 3],
        }, status=Status(code=Status.STATUS_CODE_ERROR, message=f"401: token {JWT} rejected"),
            trace_state=f"acme={KEY}",
            events=[Span.Event(time_unix_nano=time.time_ns(), name=f"retry {JWT}",
                               attributes=attrs({A.KEY_FINGERPRINT: KEY, "args": [KEY], "m": {"k": JWT}}))]),
        # 2. a scope error whose labels are not what they claim: no scope name, no verdict
        span("GET /v1/files", {A.SCOPE_ERROR: True, A.SCOPE_MISSING: ["API.Threads.Read"],
                               A.KEY_FINGERPRINT: FINGERPRINT, A.DIAGNOSIS: f"platform {KEY}"}),
        # 3. a clean scope error: kept as it is, types included (positive control)
        span("GET /v1/threads/{thread_id}/runs", {A.SCOPE_ERROR: True, A.SCOPE_MISSING: [READ],
                                                  A.KEY_FINGERPRINT: FINGERPRINT, A.KEY_HINT: KEY_HINT,
                                                  A.DIAGNOSIS: verdicts.SCOPE_FLAPPING}),
    ]


def traces_request(service: str, spans: list[Span]) -> bytes:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=hostile_resource(service), scope_spans=[ScopeSpans(scope=hostile_scope(), spans=spans)])]
    ).SerializeToString()


def metrics_request(service: str, trace_id: bytes) -> bytes:
    now = time.time_ns()
    point = NumberDataPoint(
        start_time_unix_nano=now - 10_000_000_000, time_unix_nano=now, as_int=3,
        attributes=attrs({A.KEY_FINGERPRINT: KEY, "args": ["x", KEY], "m": {"k": JWT}, "ok": "fine"}),
        exemplars=[Exemplar(time_unix_nano=now, as_int=1, trace_id=trace_id, span_id=_id(8),
                            filtered_attributes=attrs({"note": f"Bearer {BEARER}", "k": KEY}))])
    metric = Metric(name="app.hostile", description=f"for {JWT}", unit=JWT,
                    sum=Sum(data_points=[point], is_monotonic=True,
                            aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE))
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=hostile_resource(service), scope_metrics=[ScopeMetrics(scope=hostile_scope(), metrics=[metric])])]
    ).SerializeToString()


def logs_request(service: str) -> bytes:
    now = time.time_ns()
    records = [
        LogRecord(time_unix_nano=now, severity_text="ERROR", event_name=f"openai.call {JWT}",
                  body=any_value({"message": f"calling with {KEY}", KEY: "a key as a body key",
                                  "nested": [{"header": f"Bearer {BEARER}"}]}),
                  attributes=attrs({A.KEY_FINGERPRINT: JWT, "args": [KEY], "m": {"deep": {"k": KEY}}})),
        LogRecord(time_unix_nano=now, severity_text="WARN", body=any_value(f"request failed for {KEY}")),
        LogRecord(time_unix_nano=now, body=any_value([KEY, {"t": JWT}])),
    ]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=hostile_resource(service), scope_logs=[ScopeLogs(scope=hostile_scope(), log_records=records)])]
    ).SerializeToString()


def post(col: stack.Collector, signal: str, body: bytes) -> None:
    req = urllib.request.Request(f"{col.otlp_http}/v1/{signal}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, resp.status


def leaked(text: str) -> list[str]:
    """8-character pieces of any secret found in text (pieces of the documented hint excepted)."""
    found = set()
    for secret in (KEY, JWT, BEARER):
        found |= {p for p in h.secret_pieces(secret, KEY_HINT) if p in text}
    return sorted(found)


# ---------------------------------------------------------------------------------------------------
# The stack: base.yaml + jaeger.yaml, plus a file exporter on every pipeline (what each pipeline sends)
# ---------------------------------------------------------------------------------------------------


def capture_overlay(out: Path) -> dict[str, Any]:
    """One more --config: a file exporter appended to every pipeline's exporters (lists are replaced, so each
    list is restated from the merged shipped config)."""
    shipped = h.merged("base.yaml", "jaeger.yaml")
    pipelines = {pid: {"exporters": [*p["exporters"], "file/scrub"]}
                 for pid, p in shipped["service"]["pipelines"].items()}
    return {"exporters": {"file/scrub": {"path": str(out)}}, "service": {"pipelines": pipelines}}


@dataclass
class ScrubStack:
    jaeger: stack.Jaeger
    collector: stack.Collector
    prometheus: stack.Prometheus
    capture: Path
    workdir: Path


@pytest.fixture(scope="module")
def scrub_stack(tmp_path_factory):
    bins = stack.require_binaries()
    work = tmp_path_factory.mktemp("scrub")
    capture = work / "exported.jsonl"
    started: list[Any] = []
    try:
        jaeger = stack.Jaeger.start(bins, work)
        started.append(jaeger)
        col = stack.Collector.start(bins, work, ["base.yaml", "jaeger.yaml"], extra=capture_overlay(capture),
                                    env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc, "ANOMALY_LOG_VERBOSITY": "detailed"})
        started.append(col)
        prom = stack.Prometheus.start(bins, work, scrape=[col.prometheus_exporter])
        started.append(prom)
        yield ScrubStack(jaeger, col, prom, capture, work)
    finally:
        for proc in reversed(started):
            proc.stop()


@dataclass
class Sent:
    trace_id: str
    exported: str  # every byte every exporter and backend returned, as text


@pytest.fixture(scope="module")
def hostile(scrub_stack):
    st = scrub_stack
    col, jaeger, prom = st.collector, st.jaeger, st.prometheus
    trace_id = _id(16)
    post(col, "traces", traces_request(SERVICE, hostile_spans(trace_id)))
    post(col, "metrics", metrics_request(SERVICE, trace_id))
    post(col, "logs", logs_request(SERVICE))
    stack.wait_until(lambda: len(jaeger.find_spans(SERVICE)) == 3, timeout=30, what="hostile spans in Jaeger")
    stack.wait_until(lambda: prom.series(f'{DERIVED}{{job="{SERVICE}"}}') and prom.series(f'{{job="{SERVICE}",'
                                                                                        '__name__=~"app_hostile.*"}'),
                     timeout=30, what="hostile and derived series in Prometheus")

    def captured() -> str:
        text = st.capture.read_text() if st.capture.exists() else ""
        return text if all(s in text for s in ('"resourceSpans"', '"resourceMetrics"', '"resourceLogs"')) else ""

    stack.wait_until(captured, timeout=30, what="every signal in the file exporter's output")
    stack.wait_until(lambda: "GET /v1/threads" in col.log(), timeout=30, what="the anomaly printout")
    tid = trace_id.hex()
    blobs = [st.capture.read_bytes(), col.log().encode(),
             jaeger.raw(f"/api/v3/traces/{tid}"), jaeger.raw(f"/api/traces/{tid}"),
             jaeger.raw(jaeger.search_path(SERVICE)), jaeger.raw("/api/services"),
             jaeger.raw(f"/api/services/{SERVICE}/operations"),
             json.dumps(prom.series(f'{{job="{SERVICE}"}}')).encode(), json.dumps(prom.api("metadata")).encode(),
             stack.http_get(f"http://{col.prometheus_exporter}/metrics")]
    blobs += [json.dumps(prom.api(f"label/{name}/values")).encode() for name in prom.api("labels")]
    return Sent(tid, b"\n".join(blobs).decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------------------
# Nothing of a key anywhere
# ---------------------------------------------------------------------------------------------------


def test_the_hostile_data_really_carries_the_keys():
    """Positive control: the requests as sent hold every secret whole."""
    sent = (traces_request(SERVICE, hostile_spans(_id(16))) + metrics_request(SERVICE, _id(16))
            + logs_request(SERVICE)).decode("latin-1")
    assert KEY in sent and JWT in sent and BEARER in sent and leaked(sent)


def test_no_piece_of_a_key_in_any_exporter_or_backend(hostile):
    assert leaked(hostile.exported) == []


def _v3_spans(st: ScrubStack, trace_id: str) -> dict[str, dict]:
    doc = json.loads(st.jaeger.raw(f"/api/v3/traces/{trace_id}"))
    return {s["name"]: {**s, "_resource": rs["resource"], "_scope": ss["scope"]}
            for rs in doc["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}


def _attr(span: dict, key: str) -> dict | None:
    return next((a["value"] for a in span.get("attributes") or [] if a["key"] == key), None)


def test_what_carries_no_key_keeps_its_value_and_type(scrub_stack, hostile):
    spans = _v3_spans(scrub_stack, hostile.trace_id)
    clean = spans["GET /v1/threads/{thread_id}/runs"]
    assert _attr(clean, A.SCOPE_MISSING) == {"arrayValue": {"values": [{"stringValue": READ}]}}, "still a list"
    assert _attr(clean, A.KEY_FINGERPRINT) == {"stringValue": FINGERPRINT}
    assert _attr(clean, A.KEY_HINT) == {"stringValue": KEY_HINT}
    (hostile_span,) = [s for n, s in spans.items() if n.startswith("GET /v1/threads ")]
    assert hostile_span["name"] == "GET /v1/threads ****"
    assert hostile_span["status"]["message"] == "401: token **** rejected"
    assert _attr(hostile_span, "app.numbers") == {"arrayValue": {"values": [{"intValue": str(i)} for i in (1, 2, 3)]}}
    assert _attr(hostile_span, A.KEY_FINGERPRINT) == {"stringValue": FINGERPRINT}
    # a list holding a key: its string form, with the key masked and the rest readable
    masked_args = '["java","-jar","app.jar","--openai.key=****"]'
    assert _attr(hostile_span, "process.command_args") == {"stringValue": masked_args}
    resource = {a["key"]: a["value"] for a in hostile_span["_resource"]["attributes"]}
    assert resource[A.KEY_FINGERPRINT] == {"stringValue": "****"}, "not a fingerprint: replaced"
    assert resource["service.name"] == {"stringValue": SERVICE}


def test_derived_labels_are_validated(scrub_stack, hostile):
    """openai.scope is a scope name by the SDK's grammar or "unknown"; the diagnosis a bounded identifier; the
    fingerprint a fingerprint. A key as the first missing scope never becomes a label."""
    prom = scrub_stack.prometheus
    series = prom.series(f'{DERIVED}{{job="{SERVICE}"}}')
    by = {(s["openai_scope"], s["openai_scope_error_diagnosis"], s["openai_key_fingerprint"]) for s in series}
    assert by == {("unknown", verdicts.UNKNOWN, FINGERPRINT), ("unknown", "unknown", FINGERPRINT),
                  (READ, verdicts.SCOPE_FLAPPING, FINGERPRINT)}, by
    for scope, diagnosis, _ in by:
        assert scope == "unknown" or is_scope_name(scope)
        assert re.fullmatch(r"[a-z][a-z_]{0,31}", diagnosis)


# ---------------------------------------------------------------------------------------------------
# The cap on derived label sets
# ---------------------------------------------------------------------------------------------------


def _derived_lines(col: stack.Collector, service: str) -> list[str]:
    text = stack.http_get(f"http://{col.prometheus_exporter}/metrics").decode()
    return [x for x in text.splitlines() if x.startswith(DERIVED + "{") and f'job="{service}"' in x]


def test_derived_label_sets_are_capped(scrub_stack):
    """One more distinct valid scope than the shipped cap (DERIVED_MAX_SERIES, default 2000), from a sender that
    is not the SDK (no per-process cap of its own): at most the cap of label sets reach the exporter, the rest is
    dropped and counted in the Collector's own telemetry."""
    cfg = h.load_config("base.yaml")
    cap = int(re.fullmatch(r"\$\{env:DERIVED_MAX_SERIES:-(\d+)\}",
                           cfg["processors"]["delta_to_cumulative/derived"]["max_streams"]).group(1))
    bins = stack.require_binaries("otelcol")
    st = scrub_stack
    with stack.Collector.start(bins, st.workdir, ["base.yaml", "jaeger.yaml"], name="otelcol-cap",
                               env={"JAEGER_OTLP_ENDPOINT": st.jaeger.otlp_grpc}) as col:
        trace_id = _id(16)
        n = cap + 51
        scopes = [f"hostile.scope{i:05d}" for i in range(n)]
        for start in range(0, n, 500):
            spans = [Span(trace_id=trace_id, span_id=_id(8), name="call", start_time_unix_nano=time.time_ns(),
                          end_time_unix_nano=time.time_ns(),
                          attributes=attrs({A.SCOPE_ERROR: True, A.SCOPE_MISSING: [s], A.KEY_FINGERPRINT: FINGERPRINT}))
                     for s in scopes[start:start + 500]]
            post(col, "traces", ExportTraceServiceRequest(resource_spans=[ResourceSpans(
                resource=Resource(attributes=attrs({"service.name": CAP_SERVICE})),
                scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString())
        dropped = stack.wait_until(lambda: col.own_metric("otelcol_deltatocumulative_datapoints", error="limit"),
                                   timeout=30, what="datapoints dropped at the limit")
        lines = stack.wait_until(lambda: (x := _derived_lines(col, CAP_SERVICE)) and len(x) >= cap and x,
                                 timeout=30, what=f"{cap} derived series")
        time.sleep(1)
        lines = _derived_lines(col, CAP_SERVICE)
    assert len(lines) == cap, (len(lines), cap)
    assert dropped >= n - cap
    seen = {re.search(r'openai_scope="([^"]+)"', x).group(1) for x in lines}
    assert seen <= set(scopes)
