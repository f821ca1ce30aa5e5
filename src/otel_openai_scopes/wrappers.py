"""The wrappers the instrumentor installs: thin sync and async bodies around the recorder's calls.

Each catches its own failures (logged once, the user's call proceeds unchanged); the recorder does the work.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.context import attach, detach
from opentelemetry.trace import set_span_in_context

from .recorder import CallState, Recorder
from .safety import report_internal_error
from .streams import AsyncStreamProxy, SyncStreamProxy

if TYPE_CHECKING:  # the wrapt wrapper signature
    Wrapped = Callable[..., Any]
    Args = tuple[Any, ...]
    Kwargs = dict[str, Any]

_CURRENT: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("otel_openai_scopes_call", default=None)


def sync_request(recorder: Recorder, stream_types: tuple[type, ...]) -> Callable[..., Any]:
    """``SyncAPIClient.request``: one span per logical call; a stream keeps it open until consumed."""
    finish = recorder.finish

    def request_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not (recorder.listening or recorder.live()):
            return wrapped(*args, **kwargs)
        try:
            state = recorder.start(instance, args[1] if len(args) > 1 else kwargs["options"])
            token = attach(set_span_in_context(state.span))
        except Exception as exc:  # noqa: BLE001
            report_internal_error("request.start", exc)
            return wrapped(*args, **kwargs)
        var_token = _CURRENT.set(state)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _CURRENT.reset(var_token)
            detach(token)
            finish(state, exc=exc)
            raise
        _CURRENT.reset(var_token)
        detach(token)
        if isinstance(result, stream_types):
            try:
                return SyncStreamProxy(result, state, finish)
            except Exception as exc:  # noqa: BLE001
                report_internal_error("request.stream", exc)
        finish(state)
        return result

    return request_wrapper

def async_request(recorder: Recorder, stream_types: tuple[type, ...]) -> Callable[..., Any]:
    """``AsyncAPIClient.request``: as :func:`sync_request`."""
    finish = recorder.finish

    async def request_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not (recorder.listening or recorder.live()):
            return await wrapped(*args, **kwargs)
        try:
            state = recorder.start(instance, args[1] if len(args) > 1 else kwargs["options"])
            token = attach(set_span_in_context(state.span))
        except Exception as exc:  # noqa: BLE001
            report_internal_error("request.start", exc)
            return await wrapped(*args, **kwargs)
        var_token = _CURRENT.set(state)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _CURRENT.reset(var_token)
            detach(token)
            finish(state, exc=exc)
            raise
        _CURRENT.reset(var_token)
        detach(token)
        if isinstance(result, stream_types):
            try:
                return AsyncStreamProxy(result, state, finish)
            except Exception as exc:  # noqa: BLE001
                report_internal_error("request.stream", exc)
        finish(state)
        return result

    return request_wrapper

def _state_for(instance: Any, by: str) -> CallState | None:
    """The call in flight this attempt belongs to (``by="http"``: only its own HTTP client's sends)."""
    state = _CURRENT.get()
    if state is None or state.finished:
        return None
    if by == "http" and instance is not state.http_client:
        return None
    return state

def sync_send(recorder: Recorder, by: str) -> Callable[..., Any]:
    """One HTTP attempt, with the headers as sent (``_send_request``, or the HTTP client's ``send``)."""
    state_for = _state_for

    def send_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        state = state_for(instance, by)
        if state is None:
            return wrapped(*args, **kwargs)
        try:
            recorder.attempt_started(state, args[0] if args else kwargs.get("request"))
        except Exception as exc:  # noqa: BLE001
            report_internal_error("attempt.start", exc)
        response = wrapped(*args, **kwargs)
        state.last_response = response
        return response

    return send_wrapper

def async_send(recorder: Recorder, by: str) -> Callable[..., Any]:
    """As :func:`sync_send`."""
    state_for = _state_for

    async def send_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        state = state_for(instance, by)
        if state is None:
            return await wrapped(*args, **kwargs)
        try:
            recorder.attempt_started(state, args[0] if args else kwargs.get("request"))
        except Exception as exc:  # noqa: BLE001
            report_internal_error("attempt.start", exc)
        response = await wrapped(*args, **kwargs)
        state.last_response = response
        return response

    return send_wrapper

def client_init(recorder: Recorder) -> Callable[..., Any]:
    """``OpenAI.__init__``: the client's identity and construction values, recorded once."""
    def init_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        wrapped(*args, **kwargs)
        try:
            if recorder.registry.get(instance) is None:
                recorder.register_client(instance)
        except Exception as exc:  # noqa: BLE001
            report_internal_error("client.init", exc)

    return init_wrapper

def client_copy(recorder: Recorder) -> Callable[..., Any]:
    """``copy()``/``with_options()``: the new client's parent."""
    def copy_wrapper(wrapped: Wrapped, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        child = wrapped(*args, **kwargs)
        try:
            recorder.registry.set_parent(child, instance)
        except Exception as exc:  # noqa: BLE001
            report_internal_error("client.copy", exc)
        return child

    return copy_wrapper
