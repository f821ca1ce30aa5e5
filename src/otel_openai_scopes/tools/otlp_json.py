"""OTLP JSON lines: the format the Collector's ``file`` exporter writes, written and read here.

Writing: spans through :class:`~otel_openai_scopes.exporter.OpenAIScopesFileSpanExporter` (also the
``openai_scopes_file`` entry point), metrics through :class:`OtlpJsonFileMetricExporter` (the demo's).
Reading: :class:`SpanReader` (:mod:`.otlp_read`, with per-file accounting) of :class:`SpanRecord` decoded by
:mod:`.otlp_decode`; :func:`attributes_of` for documents already parsed.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from ..exporter import AppendOnlyFile, OpenAIScopesFileSpanExporter
from .otlp_decode import SpanRecord, process_id, process_label
from .otlp_read import FileStats, SpanReader, UnreadableFile, file_warnings, read_spans, split_points

# The demo's and tests' name for the span exporter.
OtlpJsonFileSpanExporter = OpenAIScopesFileSpanExporter

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(obj: Any) -> Any:
    """protobuf's JSON mapping writes ids as base64; OTLP/JSON wants lowercase hex."""
    import base64

    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            if k in _ID_KEYS and isinstance(v, str) and v:
                obj[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(obj, list):
        for v in obj:
            _hex_ids(v)
    return obj


class OtlpJsonFileMetricExporter(MetricExporter):
    """Appends one ``{"resourceMetrics": [...]}`` line per export (cumulative)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self._out = AppendOnlyFile(path)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped,unused-ignore]
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        from ..exporter import dumps_line

        self._out.write_line(dumps_line(_hex_ids(MessageToDict(encode_metrics(metrics_data)))))
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def any_value(v: Any) -> Any:
    """OTLP/JSON AnyValue (a parsed dict) -> Python value."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: any_value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}
    return None


def attributes_of(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    """OTLP/JSON attributes (parsed dicts) -> a flat mapping."""
    return {kv["key"]: any_value(kv.get("value", {})) for kv in items or () if "key" in kv}


__all__ = [
    "FileStats",
    "OtlpJsonFileMetricExporter",
    "OtlpJsonFileSpanExporter",
    "SpanReader",
    "SpanRecord",
    "UnreadableFile",
    "attributes_of",
    "file_warnings",
    "process_id",
    "process_label",
    "read_spans",
    "split_points",
]
