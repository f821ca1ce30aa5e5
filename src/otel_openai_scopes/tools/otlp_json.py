"""OTLP JSON lines: the format the Collector's file exporter writes, written and read here.

The demo writes its telemetry in this format so that ``report`` reads the demo's own output and a
Collector's ``file`` exporter output alike, from one or many processes.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(obj: Any) -> Any:
    """protobuf's JSON mapping writes ids as base64; OTLP/JSON wants lowercase hex."""
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


class _LineWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, message: Any) -> None:
        line = json.dumps(_hex_ids(MessageToDict(message)), separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


class OtlpJsonFileSpanExporter(SpanExporter):
    """Appends one ``{"resourceSpans": [...]}`` line per export."""

    def __init__(self, path: str | Path) -> None:
        self._out = _LineWriter(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._out.write(encode_spans(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out.close()


class OtlpJsonFileMetricExporter(MetricExporter):
    """Appends one ``{"resourceMetrics": [...]}`` line per export (cumulative)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self._out = _LineWriter(path)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self._out.write(encode_metrics(metrics_data))
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._out.close()


# ---- reading ---------------------------------------------------------------------------------------
def any_value(v: dict[str, Any]) -> Any:
    """OTLP/JSON AnyValue -> Python value."""
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
    return {kv["key"]: any_value(kv.get("value", {})) for kv in items or () if "key" in kv}


@dataclass
class SpanRecord:
    """One span from an OTLP JSON file, flattened to what the report reads."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    source: str = ""

    @property
    def process(self) -> str:
        pid = self.resource.get("process.pid")
        inst = self.resource.get("service.instance.id")
        return str(inst or (f"pid {pid}" if pid else self.source))


def read_spans(paths: Sequence[str | Path]) -> Iterator[SpanRecord]:
    """Spans from OTLP JSON lines files (collector file exporter or the demo); bad lines are skipped."""
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                for rs in doc.get("resourceSpans", []) if isinstance(doc, dict) else []:
                    resource = attributes_of(rs.get("resource", {}).get("attributes"))
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            yield SpanRecord(
                                name=sp.get("name", ""),
                                start_ns=int(sp.get("startTimeUnixNano", 0)),
                                end_ns=int(sp.get("endTimeUnixNano", 0)),
                                attributes=attributes_of(sp.get("attributes")),
                                resource=resource,
                                source=str(path),
                            )


__all__ = [
    "OtlpJsonFileMetricExporter",
    "OtlpJsonFileSpanExporter",
    "SpanRecord",
    "read_spans",
]
