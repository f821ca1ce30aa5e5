"""What a report amounts to for automation: its exit code (:mod:`..exit_codes`), and why there is nothing to
analyse when that is so (never an all-clear for a file that could not be read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import exit_codes
from .fleet import plural

if TYPE_CHECKING:
    from .fold import Analysis

EXIT_CLEAR = exit_codes.OK
EXIT_SCOPE_ERRORS = exit_codes.FOUND
EXIT_UNREADABLE = exit_codes.USAGE


def nothing_readable(analysis: Analysis) -> str | None:
    """One line saying why there is nothing to analyse, or None: no span at all, or spans but none from this
    instrumentation."""
    if analysis.calls:
        return None
    if not analysis.spans:
        why = "; ".join(f"{f.path}: {f.problem or 'no spans'}" for f in analysis.files) or "no input"
        return f"nothing readable: {why}"
    return (f"read {plural(analysis.spans, 'span')} but no OpenAI call recorded by otel-openai-scopes "
            "(is the openai_scopes instrumentation enabled in the app?)")


def exit_code(analysis: Analysis) -> int:
    if nothing_readable(analysis) is not None:
        return EXIT_UNREADABLE
    return EXIT_SCOPE_ERRORS if analysis.scope_errors else EXIT_CLEAR
