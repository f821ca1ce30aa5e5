"""Spans in: which attributes the report reads, values of any type made into the plain, bounded values it folds,
and the per-file counts of what was read and what could not be.

Lines with fields of the wrong type never get here (:mod:`..otlp_read` counts them unreadable); what does may still
hold any type where the report expects text (a list for a template, a number for an id). These helpers turn it
into text or nothing, never raise, and bound every value (:mod:`.limits`): names a file invents (scopes, changed
fields, verdicts) must have the shape of one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ... import attributes as A
from ... import verdicts as V
from ...scope_names import MAX_SCOPES, is_scope_name
from ..otlp_read import FileStats, SpanReader
from . import limits as L

#: Span attributes the report reads for every span; the others (the error's details, a new client's origin, a new
#: endpoint's scopes) are converted only when needed (``SpanRecord.get``).
READ_ATTRIBUTES = frozenset({
    A.TEMPLATE, A.HTTP_METHOD, A.HTTP_STATUS, A.KEY_FINGERPRINT, A.SCOPE_ERROR, A.CLIENT_ID, A.CLIENT_MUTATED,
    A.ORGANIZATION, A.PROJECT, A.HOST,
})

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def text(value: Any) -> str:
    """An attribute as a string ("" when absent)."""
    if type(value) is str:
        return value
    return "" if value is None else str(value)


def clip(value: Any, limit: int = L.MAX_TEXT) -> str:
    """An attribute as a string of at most ``limit`` characters."""
    return text(value)[:limit]


def texts(value: Any) -> tuple[str, ...]:
    """A string-array attribute as a tuple of strings (a lone string counts as one)."""
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(text(v) for v in value)
    return (text(value),)


def scope_names(value: Any) -> tuple[str, ...]:
    """The scope names in a string-array attribute, by the scope grammar: sorted, unique, at most MAX_SCOPES."""
    if not value:
        return ()
    return tuple(sorted({s for s in texts(value) if is_scope_name(s)}))[:MAX_SCOPES]


def scope_set(value: Any) -> frozenset[str]:
    """Every scope name in a string-array attribute (a token's grant: membership must see all of it)."""
    return frozenset(s for s in texts(value) if is_scope_name(s)) if value else frozenset()


def field_names(value: Any) -> tuple[str, ...]:
    """Names of changed fields (``openai.client.mutated``): identifier-shaped, at most MAX_NAMES."""
    if not value:
        return ()
    return tuple(dict.fromkeys(n for n in texts(value) if _NAME.fullmatch(n)))[:L.MAX_NAMES]


def verdict_name(value: Any, seen: Collection[str]) -> str:
    """A live verdict: a known one, or (from a newer version) an identifier-shaped name while fewer than
    MAX_NAMES unknown ones are in ``seen``; anything else reads as ``unknown``."""
    name = text(value)
    if name in V.MEANINGS:
        return name
    if not name or not _NAME.fullmatch(name) or sum(1 for s in seen if s not in V.MEANINGS) >= L.MAX_NAMES:
        return V.UNKNOWN
    return name


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


def check(attributes: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a value the report reads that no instrumentation writes: a NaN or infinite status
    code (valid OTLP for a double, malformed for a status); the line is then unreadable."""
    code = attributes.get(A.HTTP_STATUS)
    if type(code) is float and not math.isfinite(code):
        raise ValueError(f"{A.HTTP_STATUS} {code}")


def reader(paths: Sequence[str | Path], byte_range: tuple[int, int] | None = None) -> SpanReader:
    """A streaming reader of the files (or of one byte range of one plain file) keeping what the report reads."""
    return SpanReader(paths, READ_ATTRIBUTES, byte_range=byte_range, check=check)


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
