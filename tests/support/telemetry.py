"""The OpenTelemetry SDK for real, kept in memory: what the instrumentation produced, read back in tests.

:class:`Telemetry` is the one set of providers a test gives the instrumentation: an in-memory span exporter and
metric reader, and optionally the OTLP/gRPC exporters to a Collector too (the stack tests: "what the app
exported" is then the in-memory copy). :func:`metric_points` and :func:`metric_sum` flatten any metric reader.
:func:`counting_pipeline` keeps counts instead of spans, for load tests of tens of thousands of calls.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import attributes as A
from otel_openai_scopes.safety import reset_reported


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of the metric ``name`` the reader holds now (all resources and scopes)."""
    data = reader.get_metrics_data()
    return [p for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics for m in sm.metrics
            if m.name == name for p in m.data.data_points]


def metric_sum(reader: InMemoryMetricReader, name: str, attributes: Mapping[str, Any] | None = None) -> float:
    """Sum over the points of ``name`` that carry ``attributes``: counter values, histogram counts."""
    want = dict(attributes or {})
    return float(sum(p.value if hasattr(p, "value") else p.count
                     for p in metric_points(reader, name) if all(p.attributes.get(k) == v for k, v in want.items())))


class Telemetry:
    """Real SDK providers: spans into an in-memory exporter, metrics into an in-memory reader and, with ``otlp``
    (host:port of a Collector's OTLP/gRPC receiver), also exported there in batches."""

    def __init__(self, resource: Mapping[str, str] | None = None, otlp: str | None = None,
                 span_delay_ms: int = 200, metric_interval_ms: int = 500) -> None:
        res = Resource.create(dict(resource)) if resource else Resource.create()
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=res)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        readers: list[MetricReader] = [self.reader]
        if otlp:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.tracer_provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=otlp, insecure=True), schedule_delay_millis=span_delay_ms))
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp, insecure=True),
                                                         export_interval_millis=metric_interval_ms))
        self.meter_provider = MeterProvider(resource=res, metric_readers=readers)
        self.instrumentor: OpenAIScopesInstrumentor | None = None

    def instrument(self) -> OpenAIScopesInstrumentor:
        """Switch the instrumentation on with these providers (once-only warnings reset first)."""
        reset_reported()
        self.instrumentor = OpenAIScopesInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        return self.instrumentor

    def close(self) -> None:
        """Instrumentation off, everything exported, providers shut down."""
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()
            self.instrumentor = None
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metric_points(self, name: str) -> list[Any]:
        return metric_points(self.reader, name)

    def metric_sum(self, name: str, attributes: Mapping[str, Any] | None = None, **attrs: Any) -> float:
        """Like :func:`metric_sum`; keyword attributes spell dots as ``__`` (``openai__scope=...``)."""
        want = dict(attributes or {})
        want.update({k.replace("__", "."): v for k, v in attrs.items()})
        return metric_sum(self.reader, name, want)


class CountingExporter(SpanExporter):
    """Keeps counts, not spans: tens of thousands of spans would cost far more memory than the checks need."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.children_per_parent: Counter[int] = Counter()
        self.ours = 0
        self.app = 0
        self.labels: Counter[Any] = Counter()
        self.statuses: Counter[Any] = Counter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.lock:
            for s in spans:
                attributes = s.attributes or {}
                if attributes.get(A.TEMPLATE):
                    self.ours += 1
                    self.children_per_parent[s.parent.span_id if s.parent else 0] += 1
                    self.statuses[attributes.get(A.HTTP_STATUS)] += 1
                    if attributes.get(A.SCOPE_ERROR):
                        self.labels[attributes[A.DIAGNOSIS]] += 1
                else:
                    self.app += 1
        return SpanExportResult.SUCCESS


def counting_pipeline(**settings: Any) -> tuple[CountingExporter, TracerProvider, InMemoryMetricReader,
                                                 OpenAIScopesInstrumentor]:
    """Real SDK providers with a counting exporter and an in-memory metric reader, instrumented with ``settings``."""
    exporter = CountingExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    inst = OpenAIScopesInstrumentor(**settings)
    inst.instrument(tracer_provider=tp, meter_provider=MeterProvider(metric_readers=[reader]))
    return exporter, tp, reader, inst
