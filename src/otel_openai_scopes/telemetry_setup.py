"""OpenTelemetry SDK wiring for the command-line tools (demo, doctor): file, console and OTLP exporters.

The instrumentation itself needs only the API; this module is what a small app would write at
start-up, used here so the demo and the probe emit exactly what the instrumentation emits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .otlp_json import OtlpJsonFileMetricExporter, OtlpJsonFileSpanExporter


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    file_path: Path | None = None
    otlp_endpoint: str = ""
    readers: list[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _otlp_exporters() -> tuple[Any, Any] | None:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(), OTLPMetricExporter()


def setup_telemetry(service_name: str, file_path: str | Path | None = None, console: bool = False,
                    export_interval_ms: int = 1000) -> Telemetry:
    """Providers with an in-memory copy (for summaries), an OTLP JSON file, console and OTLP when configured."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
                                "process.pid": os.getpid()})
    tp = TracerProvider(resource=resource)
    spans = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    readers: list[Any] = []
    memory_reader = InMemoryMetricReader()
    readers.append(memory_reader)
    path = Path(file_path) if file_path else None
    if path is not None:
        tp.add_span_processor(BatchSpanProcessor(OtlpJsonFileSpanExporter(path)))
        readers.append(PeriodicExportingMetricReader(OtlpJsonFileMetricExporter(path),
                                                     export_interval_millis=export_interval_ms))
    if console:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        tp.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    otlp = _otlp_exporters()
    endpoint = ""
    if otlp is not None:
        span_exp, metric_exp = otlp
        tp.add_span_processor(BatchSpanProcessor(span_exp))
        readers.append(PeriodicExportingMetricReader(metric_exp, export_interval_millis=export_interval_ms))
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    mp = MeterProvider(resource=resource, metric_readers=readers)
    return Telemetry(tp, mp, spans, memory_reader, path, endpoint, readers)
