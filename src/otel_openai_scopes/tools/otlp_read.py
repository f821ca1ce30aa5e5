"""Reading OTLP JSON lines with accounting: plain or gzip files, one ``{"resourceSpans": [...]}`` document per
line, from any number of processes (:class:`SpanReader`).

Every line is counted: read, another signal (metrics, logs), or unreadable with a reason; when a file yields no
span at all, :func:`_why` says what it looks like instead (console-exporter output, binary data, a Collector
``format: proto`` or zstd file, a cut-off export), so the report never turns "I could not read your file" into an
all-clear.
"""

# ruff: noqa: UP007
from __future__ import annotations

import gzip
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

import msgspec

from .otlp_decode import DECODER, Document, SpanRecord, flat_attributes, process_id

# ---- reading with accounting ----------------------------------------------------------------------------
MAX_LINE_BYTES = 64 * 1024 * 1024  # a Collector export request is a few MB; longer lines are skipped, counted
SNIFF_BYTES = 64 * 1024

NOT_JSON = "not JSON"
NOT_OTLP = "JSON but not OTLP (no resourceSpans/resourceMetrics/resourceLogs)"
CUT_OFF = "last line cut off (export still running, or the file was truncated)"
TOO_LONG = f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB"
BINARY = "binary data"
BAD_FIELDS = "OTLP with fields of the wrong type (e.g. a time that is not a number)"
TOO_DEEP = "values nested too deeply"
#: Resources (their raw attributes) remembered per file, each at most this many bytes: the same pod's lines share one.
MAX_RESOURCES = 4096
MAX_RESOURCE_BYTES = 8192


@dataclass
class FileStats:
    """What one file held: lines read, spans, other signals and unreadable lines by reason."""

    path: str
    compression: str = ""  # "", "gzip"
    lines: int = 0
    spans: int = 0
    other_signals: int = 0  # metrics, logs, profiles lines (readable, not spans)
    unreadable: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problem: str = ""  # why nothing was readable, when that is the case (set by the reader)

    def add_unreadable(self, reason: str) -> None:
        self.unreadable += 1
        self.reasons[reason] += 1


class UnreadableFile(Exception):
    """The file cannot be opened or read at all (missing, a directory, permission)."""


def _sniff(head: bytes) -> str:
    """What a file that yielded no OTLP line looks like, from its first bytes."""
    if not head:
        return "the file is empty"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return ("zstd-compressed (Collector file exporter with compression: zstd): decompress it first "
                "(zstd -d FILE), or configure the exporter without compression")
    if len(head) > 5 and head[0] == 0 and head[4:5] == b"\x0a":
        return "length-prefixed protobuf (Collector file exporter with format: proto): configure format: json"
    text = head.decode("utf-8", errors="replace")
    if b"\x00" in head or text.count("\ufffd") > len(text) // 20:
        return "binary data, not text"
    if '"context": {' in text and ('"span_id": "0x' in text or '"trace_id": "0x' in text):
        return ("this looks like console-exporter output (ConsoleSpanExporter: one pretty-printed span per block), "
                "not OTLP JSON lines: write the file with --traces_exporter openai_scopes_file or a Collector "
                "file exporter")
    if text.lstrip().startswith(("{", "[")):
        return "JSON, but no line is an OTLP export (resourceSpans)"
    return "text, but no line is OTLP JSON"


def _open(path: Path, stats: FileStats) -> tuple[IO[bytes], bytes]:
    try:
        raw: IO[bytes] = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise UnreadableFile(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        head = raw.read(SNIFF_BYTES)
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[:2] == b"\x1f\x8b":
        stats.compression = "gzip"
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        try:
            head = stream.read(SNIFF_BYTES)
            stream.seek(0)
        except (OSError, EOFError):
            pass  # a damaged gzip stream is counted line by line below
        return stream, head
    return raw, head


def _lines(stream: IO[bytes], stats: FileStats) -> Iterator[tuple[Union[bytes, memoryview], bool]]:
    """(line, complete) pairs; lines over MAX_LINE_BYTES are drained and counted, never held."""
    while True:
        try:
            line = stream.readline(MAX_LINE_BYTES + 1)
        except (OSError, EOFError, gzip.BadGzipFile):
            stats.add_unreadable("compressed data damaged or cut off")
            return
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            stats.lines += 1
            stats.add_unreadable(TOO_LONG)
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE_BYTES)
            continue
        yield line, line.endswith(b"\n")


class SpanReader:
    """Streams :class:`SpanRecord` from files, counting what it read and what it could not.

    ``keys`` limits the span attributes kept (the report reads a dozen of the thirty); ``None`` keeps all.
    ``check`` sees each span's kept attributes and raises ``ValueError`` for a value its reader cannot take (the
    line is then unreadable, as for a field of the wrong type).
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], keys: frozenset[str] | None = None,
                 byte_range: tuple[int, int] | None = None,
                 check: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.keys = keys
        self.check = check
        #: read only bytes [start, end) of the (single, plain) file: one worker's share (:func:`split_points`)
        self.byte_range = byte_range
        self.files: list[FileStats] = []

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    @property
    def unreadable_lines(self) -> int:
        return sum(f.unreadable for f in self.files)

    def __iter__(self) -> Iterator[SpanRecord]:
        for path in self.paths:
            stats = FileStats(str(path))
            self.files.append(stats)
            yield from self._read(path, stats)

    def _read(self, path: Path, stats: FileStats) -> Iterator[SpanRecord]:
        if self.byte_range is not None:
            stream, head = _open_range(path, *self.byte_range), b""
        else:
            stream, head = _open(path, stats)
        source = str(path)
        resources: dict[bytes, tuple[dict[str, Any], str]] = {}
        with stream:
            # Plain reads, not a memory map: a file truncated while it is read (copytruncate rotation) would
            # kill a mapped reader with SIGBUS; here it only ends the read early.
            for line, complete in _lines(stream, stats):
                if len(line) < 64 and not bytes(line).strip():
                    continue
                stats.lines += 1
                try:
                    doc = DECODER.decode(line)
                except msgspec.ValidationError as exc:  # a field's path after " - at `$": OTLP, one field wrong
                    stats.add_unreadable(BAD_FIELDS if " - at `$." in str(exc) else NOT_OTLP)
                    continue
                except msgspec.DecodeError:
                    stats.add_unreadable(NOT_JSON if complete else CUT_OFF)
                    continue
                except RecursionError:
                    stats.add_unreadable(TOO_DEEP)
                    continue
                if doc.resourceSpans is None:
                    if not (doc.resourceMetrics or doc.resourceLogs or doc.resourceProfiles):
                        stats.add_unreadable(NOT_OTLP)
                    else:
                        stats.other_signals += 1
                    continue
                try:
                    records = self._records(doc, resources, source)
                except (ValueError, TypeError, OverflowError):  # e.g. a time that is not a number
                    stats.add_unreadable(BAD_FIELDS)
                    continue
                stats.spans += len(records)
                yield from records
        if not stats.spans:
            stats.problem = _why(stats, head)

    def _records(self, doc: Document, resources: dict[bytes, tuple[dict[str, Any], str]],
                 source: str) -> list[SpanRecord]:
        """One line's spans, converted whole: a bad field makes the line unreadable, never half-read."""
        keys, check = self.keys, self.check
        out: list[SpanRecord] = []
        for rs in doc.resourceSpans or ():
            raw_resource = msgspec.json.encode(rs.resource.attributes)
            known = resources.get(raw_resource)
            if known is None:
                attrs = flat_attributes(rs.resource.attributes, None)
                known = (attrs, process_id(attrs, source))
                if len(resources) < MAX_RESOURCES and len(raw_resource) <= MAX_RESOURCE_BYTES:
                    resources[raw_resource] = known
            resource, process = known
            for ss in rs.scopeSpans:
                for sp in ss.spans:
                    attributes = flat_attributes(sp.attributes, keys)
                    if check is not None:
                        check(attributes)
                    out.append(SpanRecord(sp.name, sp.startTimeUnixNano, sp.endTimeUnixNano, attributes, resource,
                                          source, process, sp.attributes if keys is not None else None))
        return out

    def warnings(self) -> list[str]:
        return file_warnings(self.files)


def file_warnings(files: Sequence[FileStats]) -> list[str]:
    """One line per file with unreadable lines (files that yielded spans), with counts and reasons."""
    out = []
    for f in files:
        if f.unreadable and f.spans:
            reasons = ", ".join(f"{n} {r}" for r, n in f.reasons.most_common())
            out.append(f"warning: {f.unreadable} of {f.lines} lines unreadable in {f.path} ({reasons}); "
                       f"{f.spans} spans read from the rest")
    return out


class _ByteRange(io.RawIOBase):
    """Bytes [start, end) of a file, read like a whole file."""

    def __init__(self, raw: io.FileIO, start: int, end: int) -> None:
        super().__init__()
        raw.seek(start)
        self._raw = raw
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[:self._left]
        n = self._raw.readinto(view) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_range(path: Path, start: int, end: int) -> IO[bytes]:
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with the range
    except OSError as exc:
        raise UnreadableFile(f"cannot open {path}: {exc.strerror or exc}") from None
    return io.BufferedReader(_ByteRange(raw, start, end), 1 << 20)


def split_points(path: str | os.PathLike[str], parts: int) -> list[int]:
    """Offsets cutting a plain file into ``parts`` byte ranges of about equal size, each starting at a line
    (``[0, a, b, size]``); fewer ranges when a line is too long to find its end (at most MAX_LINE_BYTES)."""
    size = os.path.getsize(path)
    points = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            at = max(size * k // parts, points[-1])
            f.seek(at)
            rest = f.readline(MAX_LINE_BYTES + 1)
            if not rest.endswith(b"\n"):
                continue  # the end of the file, or a line too long to look for its end
            cut = at + len(rest)
            if points[-1] < cut < size:
                points.append(cut)
    points.append(size)
    return points


def _why(stats: FileStats, head: bytes) -> str:
    sniffed = _sniff(head)
    if sniffed.startswith(("zstd", "length-prefixed", "binary")):
        return sniffed
    if stats.other_signals and not stats.unreadable:
        return f"{stats.other_signals} metrics/logs line(s) but no spans"
    if stats.lines and set(stats.reasons) == {CUT_OFF}:
        return "its only line is cut off (a truncated export)"
    if stats.lines == 0 and stats.unreadable == 0:
        return "the file is empty" if not head else sniffed
    if stats.reasons.get(NOT_OTLP, 0) == stats.unreadable and sniffed.startswith("JSON"):
        return "JSON lines, but none is an OTLP export (resourceSpans)"
    return sniffed


def read_spans(paths: Sequence[str | os.PathLike[str]]) -> Iterator[SpanRecord]:
    """Spans from OTLP JSON lines files (collector file exporter or ours), every attribute kept."""
    return iter(SpanReader(paths))
