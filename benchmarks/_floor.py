"""The floor: the least an instrumentation emitting this package's contract could cost.

A wrapt wrapper around ``SyncAPIClient.request``/``AsyncAPIClient.request`` (the same patch points
as the package) that, per call, opens one CLIENT span with the contract's attributes, makes it the
current span while the SDK runs, and on the way out sets the outcome attributes and (on failure)
an ERROR status, and makes the contract's metric recordings (request counter, duration histogram,
one scope-error count on a failure). No span event: the contract has none on a plain failure
(an ``exception`` event, let alone a formatted traceback, would cost a large part of a span).
Every attribute value is a precomputed constant: it computes
nothing (no URL parsing, no endpoint matching, no fingerprint, no body parsing, no diagnosis), so
what it costs is the OpenTelemetry API/SDK work the contract itself implies. A returned stream
is wrapped in a minimal ``wrapt.ObjectProxy`` that ends the span when iteration stops, as any
instrumentation that times streams must.

The attribute names come from ``otel_openai_scopes.attributes`` (the contract); the numbers of
attributes match what the package sets on the same scenarios (21 on a success, 27 on a
missing-scope 401; 9 on the metric records of a success, with the key hint, organization and project
the metrics carry since issue 14).
"""

from __future__ import annotations

import time
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_openai_scopes import attributes as A

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# Set when the span starts (known before the call): 11 attributes.
START_ATTRIBUTES: dict[str, Any] = {
    A.HOST: "api.openai.com",
    A.PORT: 443,
    A.PROVIDER: "openai",
    A.CLIENT_ID: "a1b2c3-1",
    A.CLIENT_ASYNC: False,
    A.SDK_VERSION: "3.57.0",
    A.CLIENT_ORIGIN: "/srv/app/clients.py:42",
    A.HTTP_METHOD: "POST",
    A.TEMPLATE: "/v1/chat/completions",
    A.OPERATION: "chat.completions.create",
    A.SCOPE_REQUIRED: ("model.request", "api.model.request"),
}
# Set when the call ends, success: 10 more (21 in all).
END_ATTRIBUTES: dict[str, Any] = {
    A.ATTEMPTS: 1,
    A.KEY_KIND: "project",
    A.KEY_FINGERPRINT: "0123456789abcdef",
    A.KEY_HINT: "sk-proj-...WXYZ",
    A.ORGANIZATION: "org-bench00000000000000000000",
    A.PROJECT: "proj_bench000000000000000000000",
    A.HTTP_STATUS: 200,
    A.REQUEST_ID: "req_0123456789abcdef0123456789abcdef",
    A.RESPONSE_ORGANIZATION: "org-bench00000000000000000000",
    A.RESPONSE_PROJECT: "proj_bench000000000000000000000",
}
# Set when the call ends with a missing-scope error: 16 in all (27 with the start ones).
ERROR_ATTRIBUTES: dict[str, Any] = dict(
    END_ATTRIBUTES,
    **{
        A.HTTP_STATUS: 401,
        A.ERROR: "401",
        A.SCOPE_MISSING: ("model.request",),
        A.SCOPE_ERROR: True,
        A.DIAGNOSIS: "never_granted",
        A.DIAGNOSIS_FAILING_CLIENTS: 1,
        A.DIAGNOSIS_FAILING_KEYS: 1,
    },
)
ERROR_STATUS = Status(StatusCode.ERROR, "You have insufficient permissions for this operation.")
METRIC_ATTRIBUTES: dict[str, Any] = {
    A.HTTP_METHOD: "POST",
    A.TEMPLATE: "/v1/chat/completions",
    A.HOST: "api.openai.com",
    A.KEY_FINGERPRINT: "0123456789abcdef",
    A.KEY_HINT: "sk-proj-...WXYZ",
    A.ORGANIZATION: "org-bench00000000000000000000",
    A.PROJECT: "proj_bench000000000000000000000",
    A.HTTP_STATUS: 200,
    A.OPERATION: "chat.completions.create",
}
METRIC_ERROR_ATTRIBUTES: dict[str, Any] = dict(METRIC_ATTRIBUTES, **{A.HTTP_STATUS: 401, A.ERROR: "401"})
SCOPE_ERROR_METRIC_ATTRIBUTES: dict[str, Any] = dict(
    METRIC_ERROR_ATTRIBUTES, **{A.SCOPE: "model.request", A.DIAGNOSIS: "never_granted"}
)
SPAN_NAME = "POST /v1/chat/completions"


class _Floor:
    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry.metrics import get_meter

        self.tracer = trace.get_tracer("bench.floor", "0", tracer_provider, schema_url=_SCHEMA_URL)
        meter = get_meter("bench.floor", "0", meter_provider, schema_url=_SCHEMA_URL)
        self.requests = meter.create_counter(A.METRIC_REQUESTS, unit=A.METRIC_REQUESTS_UNIT)
        self.duration = meter.create_histogram(A.METRIC_DURATION, unit=A.METRIC_DURATION_UNIT)
        self.scope_errors = meter.create_counter(A.METRIC_SCOPE_ERRORS, unit=A.METRIC_SCOPE_ERRORS_UNIT)

    def start(self) -> tuple[Any, object, float]:
        span = self.tracer.start_span(SPAN_NAME, kind=SpanKind.CLIENT, attributes=START_ATTRIBUTES)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token, time.perf_counter()

    def finish(self, span: Any, started: float, failed: bool) -> None:
        elapsed = time.perf_counter() - started
        if failed:
            span.set_attributes(ERROR_ATTRIBUTES)
            span.set_status(ERROR_STATUS)
            span.end()
            self.requests.add(1, METRIC_ERROR_ATTRIBUTES)
            self.duration.record(elapsed, METRIC_ERROR_ATTRIBUTES)
            self.scope_errors.add(1, SCOPE_ERROR_METRIC_ATTRIBUTES)
        else:
            span.set_attributes(END_ATTRIBUTES)
            span.end()
            self.requests.add(1, METRIC_ATTRIBUTES)
            self.duration.record(elapsed, METRIC_ATTRIBUTES)


class _SyncStream(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, floor: _Floor, span: Any, started: float) -> None:
        super().__init__(wrapped)
        self._self_end = (floor, span, started)

    def __iter__(self):
        floor, span, started = self._self_end
        try:
            for item in self.__wrapped__:  # noqa: UP028 (the shape the instrumented stream has: same cost)
                yield item
        except BaseException:
            floor.finish(span, started, True)
            raise
        floor.finish(span, started, False)


class _AsyncStream(wrapt.ObjectProxy):
    def __init__(self, wrapped: Any, floor: _Floor, span: Any, started: float) -> None:
        super().__init__(wrapped)
        self._self_end = (floor, span, started)

    async def __aiter__(self):
        floor, span, started = self._self_end
        try:
            async for item in self.__wrapped__:
                yield item
        except BaseException:
            floor.finish(span, started, True)
            raise
        floor.finish(span, started, False)


def instrument_floor(tracer_provider: Any = None, meter_provider: Any = None, send_hook: bool = False) -> None:
    """``send_hook=True`` (variant ``floor-sendhook``, hotspots.py only) adds the least a per-attempt hook
    on ``_send_request`` does (find the call in flight through a ContextVar, keep the request and the
    response): the floor of an instrumentation that reads the headers as sent, as the package does."""
    import contextvars

    from openai._streaming import AsyncStream, Stream

    floor = _Floor(tracer_provider, meter_provider)
    current: contextvars.ContextVar = contextvars.ContextVar("bench_floor_call", default=None)

    def sync_request(wrapped, instance, args, kwargs):
        span, token, started = floor.start()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            otel_context.detach(token)
            floor.finish(span, started, True)
            raise
        otel_context.detach(token)
        if isinstance(result, Stream):
            return _SyncStream(result, floor, span, started)
        floor.finish(span, started, False)
        return result

    async def async_request(wrapped, instance, args, kwargs):
        span, token, started = floor.start()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException:
            otel_context.detach(token)
            floor.finish(span, started, True)
            raise
        otel_context.detach(token)
        if isinstance(result, AsyncStream):
            return _AsyncStream(result, floor, span, started)
        floor.finish(span, started, False)
        return result

    if not send_hook:
        wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", sync_request)
        wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient.request", async_request)
        return

    def sync_request_with_call(wrapped, instance, args, kwargs):
        var_token = current.set([None, None])
        try:
            return sync_request(wrapped, instance, args, kwargs)
        finally:
            current.reset(var_token)

    async def async_request_with_call(wrapped, instance, args, kwargs):
        var_token = current.set([None, None])
        try:
            return await async_request(wrapped, instance, args, kwargs)
        finally:
            current.reset(var_token)

    wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", sync_request_with_call)
    wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient.request", async_request_with_call)

    def sync_send(wrapped, instance, args, kwargs):
        call = current.get()
        if call is None:
            return wrapped(*args, **kwargs)
        call[0] = args[0] if args else kwargs.get("request")
        call[1] = response = wrapped(*args, **kwargs)
        return response

    async def async_send(wrapped, instance, args, kwargs):
        call = current.get()
        if call is None:
            return await wrapped(*args, **kwargs)
        call[0] = args[0] if args else kwargs.get("request")
        call[1] = response = await wrapped(*args, **kwargs)
        return response

    wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient._send_request", sync_send)
    wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient._send_request", async_send)
