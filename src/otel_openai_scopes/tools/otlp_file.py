"""The ``openai_scopes_file`` trace exporter: OTLP JSON lines that ``otel-openai-scopes report`` reads.

Registered in the ``opentelemetry_traces_exporter`` entry-point group, so an app run under
``opentelemetry-instrument --traces_exporter otlp,openai_scopes_file`` also writes its spans to the file
named by ``OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH``. One export is one line (``{"resourceSpans": [...]}``,
the Collector ``file`` exporter's format). Many processes may share one path: each line goes out in one
``write`` on a descriptor opened with ``O_APPEND`` while holding an exclusive ``flock``, so lines of
different processes never interleave. The descriptor is opened per export, so forked children, threads
and separate processes each hold their own lock.

When the SDK's resource has no ``service.instance.id`` (older SDKs set none) the lines carry ``process.pid``
and ``host.name``, so ``report`` can tell the processes sharing a file apart.

Needs only the OpenTelemetry SDK (no protobuf, no CLI dependencies): the encoder below writes OTLP/JSON
directly (ids in lowercase hex, 64-bit integers as strings, enums as integers).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

try:  # POSIX: an advisory lock on top of O_APPEND; elsewhere O_APPEND alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PATH_ENV = "OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH"
DEFAULT_PATH = "otel-openai-scopes.jsonl"

_log = logging.getLogger(__name__)


# ---- encoding --------------------------------------------------------------------------------------
def any_value(value: Any) -> dict[str, Any]:
    """A Python attribute value -> OTLP/JSON AnyValue."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (bytes, bytearray)):
        import base64

        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": str(k), "value": any_value(v)} for k, v in (attributes or {}).items()]


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    out: dict[str, Any] = {
        "traceId": format(ctx.trace_id, "032x") if ctx is not None else "",
        "spanId": format(ctx.span_id, "016x") if ctx is not None else "",
        "name": span.name,
        "kind": int(span.kind.value) + 1,  # SDK SpanKind.INTERNAL is 0; OTLP SPAN_KIND_INTERNAL is 1
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": key_values(span.attributes),
    }
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    if span.events:
        out["events"] = [{"timeUnixNano": str(e.timestamp), "name": e.name, "attributes": key_values(e.attributes)}
                         for e in span.events]
    status: dict[str, Any] = {}
    code = int(span.status.status_code.value)  # UNSET 0, OK 1, ERROR 2: the same numbers as OTLP
    if code:
        status["code"] = code
    if span.status.description:
        status["message"] = span.status.description
    out["status"] = status
    return out


def identify_process(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The resource attributes, plus ``process.pid`` and ``host.name`` when nothing in them tells this process
    from its siblings (older SDKs set no ``service.instance.id``): ``report`` counts processes by them."""
    out = dict(attributes)
    if "service.instance.id" not in out and "process.pid" not in out:
        import socket

        out["process.pid"] = os.getpid()  # at export time: right in forked children too
        out.setdefault("host.name", socket.gethostname())
    return out


def encode_spans_json(spans: Sequence[ReadableSpan], identify: bool = False) -> dict[str, Any]:
    """Spans -> one OTLP/JSON ``ExportTraceServiceRequest`` (grouped by resource, then scope); with
    ``identify``, resources get :func:`identify_process`."""
    resources: dict[int, tuple[Any, dict[tuple[str, str], list[dict[str, Any]]]]] = {}
    for span in spans:
        entry = resources.setdefault(id(span.resource), (span.resource, {}))
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or "") if scope is not None else ("", "")
        entry[1].setdefault(key, []).append(_span(span))
    return {"resourceSpans": [
        {"resource": {"attributes": key_values(_resource_attributes(resource, identify))},
         "scopeSpans": [{"scope": {"name": name, **({"version": version} if version else {})}, "spans": items}
                        for (name, version), items in scopes.items()]}
        for resource, scopes in resources.values()
    ]}


def _resource_attributes(resource: Any, identify: bool) -> Mapping[str, Any]:
    attributes: Mapping[str, Any] = resource.attributes if resource is not None else {}
    return identify_process(attributes) if identify else attributes


# ---- writing -----------------------------------------------------------------------------------------
class AppendOnlyFile:
    """Appends whole lines to a file that other processes may be appending to at the same time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write_line(self, data: bytes) -> None:
        """``data`` plus a newline, in one write under an exclusive lock (released when closed)."""
        if not data.endswith(b"\n"):
            data += b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a short write (signal, full disk) continues under the same lock
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def dumps_line(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class OpenAIScopesFileSpanExporter(SpanExporter):
    """Appends one ``{"resourceSpans": [...]}`` line per export to ``path`` (default: the
    ``OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH`` environment variable, else ``otel-openai-scopes.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        chosen = path if path is not None else (os.environ.get(PATH_ENV, "").strip() or DEFAULT_PATH)
        self._path = Path(chosen)
        self._out: AppendOnlyFile | None = None
        self._failed_once = False

    @property
    def path(self) -> Path:
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            if self._out is None:
                self._out = AppendOnlyFile(self._path)
            self._out.write_line(dumps_line(encode_spans_json(spans, identify=True)))
        except Exception as exc:  # noqa: BLE001 - an exporter never breaks the app: report once, drop the batch
            if not self._failed_once:
                self._failed_once = True
                _log.warning("openai_scopes_file: cannot write %s (%s: %s); spans dropped", self._path,
                             type(exc).__name__, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is written before export() returns


__all__ = [
    "DEFAULT_PATH",
    "PATH_ENV",
    "AppendOnlyFile",
    "OpenAIScopesFileSpanExporter",
    "encode_spans_json",
    "identify_process",
]
