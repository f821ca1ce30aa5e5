"""Text that leaves the process is valid Unicode: what is not is replaced, never passed on.

A Python ``str`` may hold lone surrogates (``\\ud800``): a JSON error body's escape decodes to one, as do the
bytes ``ED A0 80`` under ``json.loads``, and a file path or environment value that is not UTF-8 (decoded with
``surrogateescape``). UTF-8 cannot encode them, so one such value fails the OTLP protobuf encoder (for a span's
name or status, the whole export batch) and any UTF-8 file or log stream. A leaf module: anything may import it.
"""

from __future__ import annotations

import re

#: What replaces a character that is not valid (or, in :func:`printable_text`, not printable) text.
REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls, DEL, C1 controls and lone surrogates: nothing a one-line message or a header value needs.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8 (ASCII returns at once)."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def printable_text(text: str) -> str:
    """:func:`valid_text`, and control characters (NUL, ESC, DEL, C1) replaced by U+FFFD as well: for values
    shown on one line (span status messages, header values, log lines)."""
    if text.isascii() and text.isprintable():
        return text
    return _UNPRINTABLE.sub(REPLACEMENT, text)


__all__ = ["REPLACEMENT", "printable_text", "valid_text"]
