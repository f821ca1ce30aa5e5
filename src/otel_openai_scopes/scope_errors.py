"""Error response to the scopes it says are missing.

The server's wording has changed over time (role hints vary; newer bodies carry
``code: "missing_scope"``) and a proxy may answer with HTML, an empty body, or megabytes; parsing
reads a bounded prefix, never raises, and returns plain values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .redact import mask_credentials, safe_message
from .scope_names import MAX_SCOPES, is_scope_name

MAX_BODY_CHARS = 64 * 1024

_MISSING = re.compile(r"missing\s+(?:the\s+)?(?:required\s+)?scopes?\s*[:=]\s*", re.IGNORECASE)
_END = re.compile(r"\.(?:\s|$)|\n|[\"<]")
_SPLIT = re.compile(r"[,\s;]+|\band\b")  # between scope names in a "Missing scopes:" list


@dataclass(frozen=True)
class ErrorInfo:
    """What an error response says, in plain bounded values."""

    status: int
    missing_scopes: tuple[str, ...] = ()
    code: str = ""
    type: str = ""
    message: str = ""

    @property
    def is_scope_error(self) -> bool:
        return bool(self.missing_scopes)


def parse_missing_scopes(message: str, *secrets: str | None) -> tuple[str, ...]:
    """``"... Missing scopes: a.b, c.d. Check ..."`` -> ``("a.b", "c.d")``; anything else -> ``()``.

    A list ends at its first token that is not a scope name; a name sharing 8 or more characters
    with one of ``secrets`` (the credential sent) is dropped.
    """
    if not message:
        return ()
    message = message[:MAX_BODY_CHARS]
    found: list[str] = []
    for m in _MISSING.finditer(message):
        rest = message[m.end(): m.end() + 1024]
        end = _END.search(rest)
        chunk = rest[: end.start()] if end else rest
        for token in _SPLIT.split(chunk):
            token = token.strip().strip(".`'\"()[]")
            if not token:
                continue
            if not is_scope_name(token):
                break
            if token in found or (secrets and mask_credentials(token, *secrets) != token):
                continue
            found.append(token)
            if len(found) >= MAX_SCOPES:
                return tuple(found)
    return tuple(found)


def _error_object(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        return inner if isinstance(inner, dict) else {"message": inner} if isinstance(inner, str) else None
    return None


def body_to_text(body: Any) -> str:
    """Any body (bytes, str, parsed JSON) -> a bounded str."""
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body[:MAX_BODY_CHARS]).decode("utf-8", "replace")
    if isinstance(body, str):
        return body[:MAX_BODY_CHARS]
    try:
        return json.dumps(body, default=str)[:MAX_BODY_CHARS]
    except Exception:  # noqa: BLE001 - a body of any shape must not break parsing
        return ""


def parse_error(status: int, body: Any, *secrets: str | None) -> ErrorInfo:
    """Parse an error response body (parsed JSON, str or bytes). Never raises."""
    obj = _error_object(body)
    text = None  # the body as bounded text, decoded at most once
    if obj is None and isinstance(body, (str, bytes, bytearray, memoryview)):
        text = body_to_text(body)
        if text.lstrip().startswith("{"):
            try:
                obj = _error_object(json.loads(text))
            except ValueError:
                obj = None
    if obj is not None:
        message = obj.get("message")
        message = message if isinstance(message, str) else body_to_text(message)
        code = obj.get("code")
        etype = obj.get("type")
        missing = parse_missing_scopes(message, *secrets)
        return ErrorInfo(
            status=status,
            missing_scopes=missing,
            code=safe_message(code, *secrets, limit=64) if isinstance(code, (str, int)) else "",
            type=safe_message(etype, *secrets, limit=64) if isinstance(etype, str) else "",
            message=safe_message(message[:MAX_BODY_CHARS], *secrets),
        )
    if text is None:
        text = body_to_text(body)
    return ErrorInfo(
        status=status,
        missing_scopes=parse_missing_scopes(text, *secrets),
        message=safe_message(text, *secrets) if text.strip() else "",
    )
