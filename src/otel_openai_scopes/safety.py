"""Never break the app: internal failures are caught, logged once per place, and the call goes on."""

from __future__ import annotations

import logging
import threading

from .forking import after_fork_in_child
from .redact import safe_message
from .text import valid_text

logger = logging.getLogger("otel_openai_scopes")

_seen: set[str] = set()
_lock = threading.Lock()
_MAX_PLACES = 256


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an instrumentation failure the first time it happens at ``where``; stay silent after.

    No traceback is formatted (it can be costly during an incident and may quote user data);
    the message is masked for credentials, and every part of the line is valid Unicode (a log handler that
    encodes UTF-8, or exports the record over OTLP, must not fail on it).
    """
    with _lock:
        if where in _seen or len(_seen) >= _MAX_PLACES:
            return
        _seen.add(where)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    location = f" at {valid_text(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb is not None else ""
    try:
        logger.warning(
            "otel-openai-scopes: internal error in %s (%s: %s)%s; the OpenAI call proceeds uninstrumented "
            "for this step. Further errors here are not logged.",
            valid_text(where),
            valid_text(type(exc).__name__),
            safe_message(exc),
            location,
        )
    except Exception:  # noqa: BLE001 - logging itself must not break the app
        pass


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()


after_fork_in_child(_after_fork)


def reset_reported() -> None:
    """For tests: forget which places have already logged."""
    with _lock:
        _seen.clear()
