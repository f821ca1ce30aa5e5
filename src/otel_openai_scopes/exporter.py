"""The ``openai_scopes_file`` trace exporter: OTLP JSON lines that ``otel-openai-scopes report`` reads.

Registered in the ``opentelemetry_traces_exporter`` entry-point group, so an app run under
``opentelemetry-instrument --traces_exporter otlp,openai_scopes_file`` also writes its spans to the file
named by ``OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH``. It is loaded into apps, so it lives in the runtime package
(never importing ``tools/``) and needs only the OpenTelemetry SDK: the encoder below writes OTLP/JSON directly
(ids in lowercase hex, 64-bit integers as strings, enums as integers).

One export is one line (``{"resourceSpans": [...]}``, the Collector ``file`` exporter's format). Many processes
may share one path: each line goes out in one ``write`` on a descriptor opened with ``O_APPEND`` while holding
an exclusive ``flock``, so lines of different processes never interleave. The descriptor is opened per export,
so forked children, threads and separate processes each hold their own lock.

One span never costs another: text is written as valid UTF-8 (lone surrogates replaced by U+FFFD), an attribute
value that cannot be written (an integer beyond 64 bits, as the OTLP protobuf encoder drops it; a NaN or infinite
double, which ``report`` would take for an unreadable line and so lose the whole batch) is left out and counted
in the span's ``droppedAttributesCount``, and a span that still cannot be encoded is dropped alone: counted in
``dropped_spans``, logged once.

The file is created 0600 (an existing file keeps its mode) and opened with ``O_NOFOLLOW``: a symbolic link at the
path, or anything but a regular file with one link, is refused with one warning and nothing is written.

When the SDK's resource has no ``service.instance.id`` (older SDKs set none) the lines carry ``process.pid``
and ``host.name``, so ``report`` can tell the processes sharing a file apart.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .forking import after_fork_in_child
from .text import valid_text

try:  # POSIX: an advisory lock on top of O_APPEND; elsewhere O_APPEND alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PATH_ENV = "OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH"
DEFAULT_PATH = "otel-openai-scopes.jsonl"
#: Mode of a file the exporter creates (the umask can only remove more); an existing file keeps its own.
FILE_MODE = 0o600

_log = logging.getLogger(__name__)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# O_NOFOLLOW: a symlink at the path fails the open (ELOOP). O_NONBLOCK: a FIFO at the path fails or returns at
# once instead of blocking the exporting thread (it is then refused as not a regular file); no effect on files.
_OPEN_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_NONBLOCK", 0))


# ---- encoding --------------------------------------------------------------------------------------
def any_value(value: Any) -> dict[str, Any]:
    """A Python attribute value -> OTLP/JSON AnyValue. Raises ``ValueError`` for what OTLP cannot hold."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("integer outside the int64 range")
        return {"intValue": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):  # OTLP/JSON writes "NaN"; `report` reads a line holding one as unreadable
            raise ValueError("a double that is not finite")
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": valid_text(value)}
    if isinstance(value, (bytes, bytearray)):
        import base64

        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": valid_text(str(value))}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Attributes -> OTLP/JSON key-values; one that cannot be encoded is left out (the others are kept)."""
    out = []
    for k, v in (attributes or {}).items():
        try:
            out.append({"key": valid_text(str(k)), "value": any_value(v)})
        except Exception:  # noqa: BLE001 - left out alone, like the OTLP protobuf encoder does
            continue
    return out


def _with_attributes(out: dict[str, Any], attributes: Mapping[str, Any] | None, dropped: int) -> dict[str, Any]:
    encoded = key_values(attributes)
    out["attributes"] = encoded
    dropped += len(attributes or ()) - len(encoded)
    if dropped:
        out["droppedAttributesCount"] = dropped
    return out


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    out: dict[str, Any] = {
        "traceId": format(ctx.trace_id, "032x") if ctx is not None else "",
        "spanId": format(ctx.span_id, "016x") if ctx is not None else "",
        "name": valid_text(span.name),
        "kind": int(span.kind.value) + 1,  # SDK SpanKind.INTERNAL is 0; OTLP SPAN_KIND_INTERNAL is 1
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
    }
    _with_attributes(out, span.attributes, span.dropped_attributes)
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    if span.events:
        out["events"] = [_with_attributes({"timeUnixNano": str(e.timestamp), "name": valid_text(e.name)},
                                          e.attributes, 0) for e in span.events]
    status: dict[str, Any] = {}
    code = int(span.status.status_code.value)  # UNSET 0, OK 1, ERROR 2: the same numbers as OTLP
    if code:
        status["code"] = code
    if span.status.description:
        status["message"] = valid_text(span.status.description)
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


def encode_spans_json(spans: Sequence[ReadableSpan], identify: bool = False,
                      failures: list[BaseException] | None = None) -> dict[str, Any]:
    """Spans -> one OTLP/JSON ``ExportTraceServiceRequest`` (grouped by resource, then scope); with
    ``identify``, resources get :func:`identify_process`. A span that cannot be encoded is left out, its
    exception appended to ``failures``."""
    resources: dict[int, tuple[Any, dict[tuple[str, str], list[dict[str, Any]]]]] = {}
    for span in spans:
        try:
            encoded = _span(span)
            scope = span.instrumentation_scope
            key = (valid_text(scope.name), valid_text(scope.version or "")) if scope is not None else ("", "")
        except Exception as exc:  # noqa: BLE001 - this span alone is lost, never its batch
            if failures is not None:
                failures.append(exc)
            continue
        entry = resources.setdefault(id(span.resource), (span.resource, {}))
        entry[1].setdefault(key, []).append(encoded)
    return {"resourceSpans": [
        {"resource": {"attributes": key_values(_resource_attributes(resource, identify))},
         "scopeSpans": [{"scope": {"name": name, **({"version": version} if version else {})}, "spans": items}
                        for (name, version), items in scopes.items()]}
        for resource, scopes in resources.values()
    ]}


def _resource_attributes(resource: Any, identify: bool) -> Mapping[str, Any]:
    attributes: Mapping[str, Any] = resource.attributes if resource is not None else {}
    return identify_process(attributes) if identify else attributes


def dumps_line(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---- writing -----------------------------------------------------------------------------------------
class RefusedPath(OSError):
    """The path is a symbolic link, or not a regular file with one link: nothing is written to it."""


class AppendOnlyFile:
    """Appends whole lines to a file that other processes may be appending to at the same time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _open(self) -> int:
        """The file for appending: created ``FILE_MODE`` if absent; never through a symlink, never a FIFO,
        device or hard-linked file (anyone who can write the directory could otherwise redirect the lines)."""
        try:
            fd = os.open(self.path, _OPEN_FLAGS, FILE_MODE)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # ENXIO: a FIFO without a reader, or a device
                what = "a symbolic link" if exc.errno == errno.ELOOP else "not a regular file"
                raise RefusedPath(exc.errno, f"{what}; refused, nothing written") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                what = "not a regular file" if not stat.S_ISREG(st.st_mode) else f"a file with {st.st_nlink} links"
                raise RefusedPath(errno.EPERM, f"{what}; refused, nothing written")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write_line(self, data: bytes) -> None:
        """``data`` plus a newline, in one write under an exclusive lock (released when closed)."""
        if not data.endswith(b"\n"):
            data += b"\n"
        fd = self._open()
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a short write (signal, full disk) continues under the same lock
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


_lock = threading.Lock()


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()


after_fork_in_child(_after_fork)


class OpenAIScopesFileSpanExporter(SpanExporter):
    """Appends one ``{"resourceSpans": [...]}`` line per export to ``path`` (default: the
    ``OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH`` environment variable, else ``otel-openai-scopes.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        chosen = path if path is not None else (os.environ.get(PATH_ENV, "").strip() or DEFAULT_PATH)
        self._path = Path(chosen)
        self._out: AppendOnlyFile | None = None
        self._warned: set[str] = set()
        #: Spans left out because they could not be encoded (each alone; the rest of its batch was written).
        self.dropped_spans = 0

    @property
    def path(self) -> Path:
        return self._path

    def _warn_once(self, reason: str, message: str, *args: Any) -> None:
        with _lock:
            if reason in self._warned:
                return
            self._warned.add(reason)
        try:
            _log.warning(message, *args)
        except Exception:  # noqa: BLE001 - logging must not break the app
            pass

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        where = valid_text(str(self._path))
        try:
            failures: list[BaseException] = []
            document = encode_spans_json(spans, identify=True, failures=failures)
            if failures:
                with _lock:
                    self.dropped_spans += len(failures)
                self._warn_once("encode", "openai_scopes_file: a span could not be encoded (%s) and was dropped "
                                "alone; the rest of its batch was written. Further drops are counted "
                                "(dropped_spans), not logged.", type(failures[0]).__name__)
                if not document["resourceSpans"]:
                    return SpanExportResult.FAILURE
            if self._out is None:
                self._out = AppendOnlyFile(self._path)
            self._out.write_line(dumps_line(document))
        except RefusedPath as exc:
            self._warn_once("refused", "openai_scopes_file: %s is %s (point %s at a regular file in a directory "
                            "only trusted users can write)", where, exc.strerror, PATH_ENV)
            return SpanExportResult.FAILURE
        except Exception as exc:  # noqa: BLE001 - an exporter never breaks the app: report once, drop the batch
            self._warn_once("write", "openai_scopes_file: cannot write %s (%s: %s); spans dropped", where,
                            type(exc).__name__, valid_text(str(exc)))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is written before export() returns


__all__ = [
    "DEFAULT_PATH",
    "FILE_MODE",
    "PATH_ENV",
    "AppendOnlyFile",
    "OpenAIScopesFileSpanExporter",
    "RefusedPath",
    "any_value",
    "dumps_line",
    "encode_spans_json",
    "identify_process",
    "key_values",
]
