"""The outcome of a call: status and response headers, error type, parsed error body and span status.

Pure functions; the memos they use (masked header values, parsed error bodies) are passed in. During an
incident the same error body arrives thousands of times a minute, so each distinct (status, message,
code, type, credentials) is parsed and masked once.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from opentelemetry.trace import Status, StatusCode

from . import attributes as A
from .caches import BoundedCache
from .headers import RESPONSE_HEADERS, pick_headers
from .limits import MAX_CACHED_ERROR_MESSAGE_CHARS
from .redact import mask_request_id, mask_value, safe_message
from .scope_errors import ErrorInfo, parse_error

#: (status, error body, *secrets) -> the parsed, masked error.
ParseError = Callable[..., ErrorInfo]
ErrorKey = tuple[Any, ...]


class Outcome(NamedTuple):
    """How a call ended. ``error_type`` is ``""`` on success."""

    status: int  # HTTP status of the final response, 0 if none
    error_type: str
    error: ErrorInfo | None  # the parsed error body of an HTTP error
    span_status: Status | None


def error_type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _masked(cache: BoundedCache[tuple[str, tuple[str, ...]], str], value: str, secrets: tuple[str, ...]) -> str:
    """A response header value that repeats call after call (organization, project), masked once."""
    key = (value, secrets)
    hit = cache.get(key)
    if hit is None:
        hit = cache.put(key, mask_value(value, *secrets) or "***", 200 + 2 * len(value))
    return hit


def masked_request_id(rid: str, secrets: tuple[str, ...]) -> str:
    """A request id masked for the credentials sent (OpenAI's ``req_<hex>`` checked in one step for one)."""
    if len(secrets) <= 1:
        return mask_request_id(rid, secrets[0] if secrets else None)
    return mask_value(rid, *secrets)


def response_attributes(attrs: dict[str, Any], response: Any, secrets: tuple[str, ...],
                        values: BoundedCache[tuple[str, tuple[str, ...]], str]) -> int:
    """Status and response headers onto ``attrs`` (masked); returns the status (0 if none)."""
    if response is None:
        return 0
    status = getattr(response, "status_code", 0)
    if not isinstance(status, int):
        status = 0
    if status:
        attrs[A.HTTP_STATUS] = status
    headers = getattr(response, "headers", None)
    if headers is not None:
        rid, rorg, rproj = pick_headers(headers, RESPONSE_HEADERS)
        if rid:
            attrs[A.REQUEST_ID] = masked_request_id(rid, secrets)
        if rorg:
            attrs[A.RESPONSE_ORGANIZATION] = _masked(values, rorg, secrets)
        if rproj:
            attrs[A.RESPONSE_PROJECT] = _masked(values, rproj, secrets)
    return status


def _error_key(status: int, body: Any, secrets: tuple[str, ...]) -> ErrorKey | None:
    """What makes two error bodies parse alike, or None for a body not worth caching."""
    if isinstance(body, dict):
        err = body.get("error", body)  # the SDK's APIStatusError.body is already the inner "error" object
        if isinstance(err, dict):
            message, code, etype = err.get("message"), err.get("code"), err.get("type")
            if isinstance(message, str) and len(message) <= MAX_CACHED_ERROR_MESSAGE_CHARS \
                    and isinstance(code, (str, type(None))) and isinstance(etype, (str, type(None))):
                return (status, message, code, etype, secrets)
    return None


def http_error(status: int, exc: BaseException, secrets: tuple[str, ...], errors: BoundedCache[ErrorKey, Outcome],
               parse: ParseError = parse_error) -> Outcome:
    """An HTTP error's outcome: its body parsed and masked (once per distinct body and credentials)."""
    body = getattr(exc, "body", None)
    key = _error_key(status, body, secrets)
    if key is not None:
        hit = errors.get(key)
        if hit is not None:
            return hit
    info = parse(status, body, *secrets)
    if not info.message:
        info = ErrorInfo(status, info.missing_scopes, info.code, info.type,
                         safe_message(getattr(exc, "message", "") or "", *secrets))
    result = Outcome(status, str(status), info, Status(StatusCode.ERROR, info.message or str(status)))
    if key is not None:
        errors.put(key, result, 1000 + 4 * len(info.message))
    return result


def outcome(status: int, exc: BaseException | None, secrets: tuple[str, ...], errors: BoundedCache[ErrorKey, Outcome],
            parse: ParseError = parse_error) -> Outcome:
    """(status, error type, parsed error, span status) of a call that did not simply succeed."""
    if exc is not None:
        if status >= 400:
            return http_error(status, exc, secrets, errors, parse)
        error_type = error_type_name(exc)
        message = safe_message(str(exc), *secrets)
        return Outcome(status, error_type, None, Status(StatusCode.ERROR, message or error_type))
    if status >= 400:
        return Outcome(status, str(status), None, None)
    return Outcome(status, "", None, None)
