"""OTLP JSON lines read back in tests: the product's own reader (:class:`SpanReader`, what ``report`` reads) for
names, times, attributes and resources, and :func:`raw_spans` for the fields it does not keep (ids, status)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Union

from otel_openai_scopes.tools.otlp_json import SpanReader, SpanRecord

PathLike = Union[str, Path]


def read_spans(*paths: PathLike) -> list[SpanRecord]:
    """Every span of these OTLP JSON lines files (plain or gzip), every attribute kept, via the product's reader."""
    return list(SpanReader(list(paths)))


def documents(path: PathLike) -> Iterator[dict[str, Any]]:
    """The JSON documents of a lines file; a line still being written (or no file yet) is skipped."""
    p = Path(path)
    if not p.exists():
        return
    for line in p.read_text().splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                continue


def raw_spans(docs: dict[str, Any] | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The span objects of OTLP JSON export documents (``{"resourceSpans": [...]}``), as written: for ids, status
    and other fields :class:`SpanRecord` does not keep."""
    return [span for doc in ([docs] if isinstance(docs, dict) else docs) for rs in doc.get("resourceSpans") or ()
            for ss in rs.get("scopeSpans") or () for span in ss.get("spans") or ()]


def attribute_values(span: dict[str, Any]) -> dict[str, Any]:
    """A raw span's attributes as {key: value} (the one value of each AnyValue, arrays as written)."""
    return {a["key"]: next(iter(a.get("value", {}).values()), None) for a in span.get("attributes") or ()}


def span_summaries(path: PathLike) -> list[dict[str, Any]]:
    """Spans of a file exporter's OTLP JSON lines as {"trace_id", "span_id", "name", "attributes"} (a file still
    being written is read as far as it is complete)."""
    return [{"trace_id": s["traceId"], "span_id": s["spanId"], "name": s["name"], "attributes": attribute_values(s)}
            for s in raw_spans(documents(path))]


