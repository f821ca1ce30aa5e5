"""Every signal the shipped Collector accepts is delivered or deliberately counted, never failed, on the real
Collector v0.161.0 with each backend overlay that can run on loopback.

A backend overlay replaces the exporters lists it restates (confmap merge); a pipeline it does not restate keeps
base.yaml's ``otlp_grpc/main``, now aimed at the overlay's backend. Jaeger and a trace store behind ``otlp.yaml``
(Tempo) take no logs: each log batch sent there fails, and the Collector logs "Exporting failed. Dropping data."
once per batch. Here one span, one metric and one log record go in over OTLP/HTTP; the span must reach the trace
backend, the metric the Prometheus exporter, the log record the overlay's log exporter, and no exporter may
report a failure (the Collector's own counters and its log). Honeycomb is not reachable from loopback: its overlay
is checked by tests/test_collector_config.py (Honeycomb does take OTLP logs).

Binaries: tests/stack.py (`bash scripts/stack.sh build`); missing -> skip, with CI set -> fail.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fleet_helpers as fh
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.support import stack

SERVICE = "overlay-check"
METRIC = "app.overlay.checks"
SIGNALS = {"spans": "traces", "metric_points": "metrics", "log_records": "logs"}


def _resource() -> Resource:
    return Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=SERVICE))])


def requests() -> dict[str, bytes]:
    """One span, one cumulative sum point and one log record, as OTLP protobuf bodies."""
    now = time.time_ns()
    span = Span(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="overlay check",
                kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now)
    point = NumberDataPoint(start_time_unix_nano=now - 10_000_000_000, time_unix_nano=now, as_int=1)
    metric = Metric(name=METRIC, sum=Sum(data_points=[point], is_monotonic=True,
                                         aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE))
    log = LogRecord(time_unix_nano=now, severity_text="INFO", body=AnyValue(string_value="an application log line"))
    return {
        "traces": ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=_resource(), scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString(),
        "metrics": ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=_resource(), scope_metrics=[ScopeMetrics(metrics=[metric])])]).SerializeToString(),
        "logs": ExportLogsServiceRequest(resource_logs=[ResourceLogs(
            resource=_resource(), scope_logs=[ScopeLogs(log_records=[log])])]).SerializeToString(),
    }


def post(col: stack.Collector, signal: str, body: bytes) -> None:
    req = urllib.request.Request(f"{col.otlp_http}/v1/{signal}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, resp.status


@dataclass
class Shipped:
    collector: stack.Collector
    spans_arrived: Callable[[], bool]  # the span is in the trace backend
    log_exporter: str  # the exporter the overlay sends logs to


@contextmanager
def jaeger_stack(bins: stack.Binaries, work: Path) -> Iterator[Shipped]:
    with ExitStack() as started:
        jaeger = started.enter_context(stack.Jaeger.start(bins, work / "jaeger"))
        col = started.enter_context(stack.Collector.start(bins, work / "otelcol", ["base.yaml", "jaeger.yaml"],
                                                          env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc}))
        yield Shipped(col, lambda: bool(jaeger.find_spans(SERVICE)), "debug/logs")


@contextmanager
def otlp_stack(bins: stack.Binaries, work: Path) -> Iterator[Shipped]:
    """otlp.yaml with a trace store as main backend (a Collector that takes traces only, like Tempo)."""
    with ExitStack() as started:
        main = started.enter_context(fh.Sink.start(bins, work / "main", name="main"))
        anomalies = started.enter_context(fh.Sink.start(bins, work / "anomalies", name="anomalies"))
        col = started.enter_context(stack.Collector.start(
            bins, work / "otelcol", ["base.yaml", "otlp.yaml"],
            env={"MAIN_OTLP_ENDPOINT": main.otlp_grpc, "ANOMALY_OTLP_ENDPOINT": anomalies.otlp_grpc,
                 "OTLP_INSECURE": "true", "ANOMALY_QUEUE_DIR": str(work / "anomaly-queue")}))
        yield Shipped(col, lambda: any(s["name"] == "overlay check" for s in main.spans()), "debug/logs")


STACKS = {"jaeger": jaeger_stack, "otlp": otlp_stack}


@pytest.mark.parametrize("overlay", sorted(STACKS))
def test_every_signal_is_delivered_or_counted_never_failed(tmp_path, overlay):
    bins = stack.require_binaries()
    with STACKS[overlay](bins, tmp_path) as shipped:
        col = shipped.collector
        for signal, body in requests().items():
            post(col, signal, body)

        def handled(kind: str) -> float:
            return col.own_metric(f"otelcol_exporter_sent_{kind}") + \
                col.own_metric(f"otelcol_exporter_send_failed_{kind}")

        # Every exporter of every pipeline has dealt with what it got (sent or failed): then judge.
        stack.wait_until(lambda: handled("log_records") >= 1, timeout=60, what="the log record handled")
        stack.wait_until(shipped.spans_arrived, timeout=60, what="the span in the trace backend")
        stack.wait_until(lambda: METRIC.replace(".", "_") in stack.http_get(
            f"http://{col.prometheus_exporter}/metrics").decode(), timeout=60, what="the metric on the exporter")
        time.sleep(2)  # a failure logged a moment after the count
        failed = {kind: col.own_metric(f"otelcol_exporter_send_failed_{kind}") for kind in SIGNALS}
        assert failed == dict.fromkeys(SIGNALS, 0.0), (failed, col.log()[-3000:])
        assert "Exporting failed" not in col.log(), col.log()[-3000:]
        assert col.own_metric("otelcol_exporter_sent_log_records", exporter=shipped.log_exporter) == 1.0
