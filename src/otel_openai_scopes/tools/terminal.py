"""The command-line tools' rich console: wide when output is piped or captured, so tables and
sentences are not squeezed into rich's 80-column default for non-terminals."""

from __future__ import annotations

from typing import Any

PIPED_WIDTH = 160


def widen_when_piped(console: Any = None) -> Any:
    """``console`` (or a new stdout console), at least ``PIPED_WIDTH`` wide unless it is a terminal."""
    if console is None:
        from rich.console import Console

        console = Console()
    if not console.is_terminal and console.width < PIPED_WIDTH:
        console.width = PIPED_WIDTH
    return console
