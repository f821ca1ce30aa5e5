"""The command-line tools' terminal output: untrusted text made inert, and rich consoles sized for pipes.

Telemetry files and probed servers are untrusted: a service name, client origin, scope or error text may
carry ESC sequences (window-title changes, OSC 52 clipboard writes, cursor moves that hide or rewrite a verdict
line) or bidirectional overrides that reorder what is shown. Every command passes such text through
:func:`clean` before printing it; rich's markup being off does not strip control characters.
"""

from __future__ import annotations

import re
from typing import Any

PIPED_WIDTH = 160

# C0 controls (tab and newline included: one value must stay on one line), DEL, C1 controls, the Unicode
# format characters that reorder or hide text (bidi embeddings/overrides/isolates, zero-width marks, BOM,
# line/paragraph separators), and lone surrogates: a path or argument that is not UTF-8 (surrogateescape) or a
# JSON "\ud800" escape; printed raw, one raises UnicodeEncodeError on a UTF-8 stdout and the command dies.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object) -> str:
    """``text`` with every control and reordering character, and every lone surrogate, shown as a visible escape
    (``\\x1b``, ``\\udcff``): the result always encodes as UTF-8.

    Printable text, including non-ASCII letters, is unchanged, so clean text is returned as is.
    """
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(_escape, text)


def widen_when_piped(console: Any = None) -> Any:
    """``console`` (or a new stdout console), at least ``PIPED_WIDTH`` wide unless it is a terminal."""
    if console is None:
        from rich.console import Console

        console = Console()
    if not console.is_terminal and console.width < PIPED_WIDTH:
        console.width = PIPED_WIDTH
    return console
