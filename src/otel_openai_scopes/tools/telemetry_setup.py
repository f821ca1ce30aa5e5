"""OpenTelemetry SDK wiring for the command-line tools (demo, doctor): file, console and OTLP exporters.

The instrumentation itself needs only the API; this module is what a small app would write at
start-up, used here so the demo and the probe emit exactly what the instrumentation emits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .otlp_json import OtlpJsonFileMetricExporter, OtlpJsonFileSpanExporter

EXPORT_INTERVAL_MS = 1000


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter | None  # only when asked for (the doctor reads back its own spans)
    file_path: Path | None = None
    otlp_endpoint: str = ""

    def shutdown(self) -> None:
        # Shutting down flushes: batch processors export what they hold and each periodic metric reader
        # makes one final collection. A force_flush first would export the metrics twice.
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
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter(), OTLPMetricExporter()


def setup_telemetry(service_name: str, file_path: str | Path | None = None, console: bool = False,
                    keep_spans: bool = False) -> Telemetry:
    """Providers exporting to an OTLP JSON file, the console and OTLP when configured, and, with
    ``keep_spans``, to memory for reading back."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
                                "process.pid": os.getpid()})
    tp = TracerProvider(resource=resource)
    spans = None
    if keep_spans:
        spans = InMemorySpanExporter()
        tp.add_span_processor(SimpleSpanProcessor(spans))
    readers: list[Any] = []
    path = Path(file_path) if file_path else None
    if path is not None:
        tp.add_span_processor(BatchSpanProcessor(OtlpJsonFileSpanExporter(path)))
        readers.append(PeriodicExportingMetricReader(OtlpJsonFileMetricExporter(path),
                                                     export_interval_millis=EXPORT_INTERVAL_MS))
    if console:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        tp.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    otlp = _otlp_exporters()
    endpoint = ""
    if otlp is not None:
        span_exp, metric_exp = otlp
        tp.add_span_processor(BatchSpanProcessor(span_exp))
        readers.append(PeriodicExportingMetricReader(metric_exp, export_interval_millis=EXPORT_INTERVAL_MS))
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    mp = MeterProvider(resource=resource, metric_readers=readers)
    return Telemetry(tp, mp, spans, path, endpoint)
