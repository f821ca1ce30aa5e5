"""Spans in: which attributes the report reads, values of any type made into the plain values it folds, and the
per-file counts of what was read and what could not be.

A telemetry file may hold any type anywhere (a list where a string belongs, a string where a number does): these
helpers turn what they get into text or nothing, never raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ... import attributes as A
from ..otlp_json import FileStats, SpanReader

#: Span attributes the report reads for every span; the others (the error's details, a new client's origin, a new
#: endpoint's scopes) are converted only when needed (``SpanRecord.get``).
READ_ATTRIBUTES = frozenset({
    A.TEMPLATE, A.HTTP_METHOD, A.HTTP_STATUS, A.KEY_FINGERPRINT, A.SCOPE_ERROR, A.CLIENT_ID, A.CLIENT_MUTATED,
})


def text(value: Any) -> str:
    """An attribute as a string ("" when absent)."""
    if type(value) is str:
        return value
    return "" if value is None else str(value)


def texts(value: Any) -> tuple[str, ...]:
    """A string-array attribute as a tuple of strings (a lone string counts as one)."""
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(text(v) for v in value)
    return (text(value),)


def status_code(value: Any) -> int:
    """``http.response.status_code`` as an int; 0 for anything that is not a plain status number."""
    if type(value) is int:
        return value
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def endpoint(name: str) -> tuple[str, str]:
    """``"GET /v1/x"`` -> ``("GET", "/v1/x")``."""
    method, _, template = name.partition(" ")
    return method, template


def reader(paths: Sequence[str | Path], byte_range: tuple[int, int] | None = None) -> SpanReader:
    """A streaming reader of the files (or of one byte range of one plain file) keeping what the report reads."""
    return SpanReader(paths, READ_ATTRIBUTES, byte_range=byte_range)


def merge_files(files: list[FileStats]) -> list[FileStats]:
    """Per-file counts of byte ranges of the same file, summed (in first-seen order)."""
    out: dict[str, FileStats] = {}
    for f in files:
        mine = out.get(f.path)
        if mine is None:
            out[f.path] = mine = FileStats(f.path, f.compression)
        mine.lines += f.lines
        mine.spans += f.spans
        mine.other_signals += f.other_signals
        mine.unreadable += f.unreadable
        mine.reasons.update(f.reasons)
    return list(out.values())
