"""Turns one logical OpenAI call (and its HTTP attempts) into a span, metric records and a diagnosis.

The :class:`Recorder` orchestrates pure steps (:mod:`.steps`) over small frozen records and holds what
they share: the tracer and instruments, the diagnosis, the metric caps and the memos that make the
per-call work a handful of dict lookups (a client is resolved once per base URL, an endpoint once per
URL, a credential once per distinct header set, an error body once per distinct body).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import NoOpTracer, ProxyTracer, SpanKind, Status, StatusCode

from . import attributes as A
from . import limits as L
from .caches import BoundedCache
from .client_view import ClientView
from .clients import INFO_ATTRIBUTE, ClientInfo, ClientRegistry
from .config import Settings
from .derived import parent_evidence
from .endpoints import EndpointMatcher, helper_of
from .fingerprint import CredentialCache
from .forking import PROCESS
from .headers import header
from .outcomes import ErrorKey, Outcome
from .recording import MetricCaps, attempt_events, create_instruments, diagnosis_changed, scope_error_attributes
from .routes import Route, mask_route
from .safety import report_internal_error
from .sent_credential import Describers, SentCredential, SentHeaders, approximate_size, sent_by_client
from .steps import DEFAULT_STEPS, Steps

_CLIENT = SpanKind.CLIENT
_SCHEME_PROBE = "otel-openai-scopes fingerprint scheme"


class CallState:
    """One logical call in flight: the one mutable record (attempts arrive one by one)."""

    __slots__ = ("attempt_log", "attempt_start", "attempts", "client", "finished", "http_client", "info",
                 "last_request", "last_response", "mutated", "route", "sent", "span", "start", "view")

    def __init__(self, client: Any, info: ClientInfo, view: ClientView, route: Route, span: Any) -> None:
        self.client = client
        self.info = info
        self.view = view
        self.route = route
        self.span = span
        self.http_client = getattr(client, "_client", None)
        self.attempts = 0
        self.attempt_log: list[tuple[int, int, Any, str]] | None = None
        self.last_request: Any = None
        self.last_response: Any = None
        self.attempt_start = 0
        self.finished = False
        self.sent: SentCredential | None = None  # the last attempt's credential, described
        self.mutated: list[str] | None = None  # fields changed since construction, judged at the last send
        self.start = time.perf_counter()


def providers_live(tracer: Any, meter: Any) -> bool:
    """Whether a real tracer or meter provider is behind our tracer and meter.

    With only the API installed (or no provider set yet) every span and metric would be dropped, so the call
    path skips all work; until a provider is set this follows the global proxies, so an SDK configured after
    ``instrument()`` is picked up.
    """
    if isinstance(tracer, ProxyTracer):
        tracer = tracer._tracer  # resolves to the real tracer once a provider is set
    if not isinstance(tracer, NoOpTracer):
        return True
    if hasattr(meter, "_real_meter"):  # the API's proxy meter
        return meter._real_meter is not None
    return not isinstance(meter, NoOpMeter)


def log_attempt(state: CallState, error: str = "") -> None:
    """Note the attempt that just ended (bounded: the span's retry events)."""
    log = state.attempt_log
    if log is None:
        log = state.attempt_log = []
    if len(log) < L.MAX_ATTEMPT_EVENTS:
        resp = state.last_response
        status = getattr(resp, "status_code", 0) if resp is not None else 0
        rid = header(resp.headers, "x-request-id") if resp is not None else None
        log.append((state.attempt_start, status, rid, error))


def rename_span(span: Any, route: Route) -> None:
    """The span of a call whose endpoint turned out to be another (Azure's deployment path): its name and route."""
    span.update_name(route.name)
    span.set_attribute(A.TEMPLATE, route.template)
    if route.operation:
        span.set_attribute(A.OPERATION, route.operation)
    if route.scopes:
        span.set_attribute(A.SCOPE_REQUIRED, route.scopes)


class Recorder:
    """Holds the tracer, instruments, diagnosis, caps and memos of one instrumentation."""

    def __init__(self, tracer: trace.Tracer, meter: Any, settings: Settings, matcher: EndpointMatcher,
                 sdk_version: str, steps: Steps = DEFAULT_STEPS) -> None:
        self.tracer = tracer
        self.meter = meter
        self.settings = settings
        self.matcher = matcher
        self.sdk_version = sdk_version
        self.steps = steps
        self.credentials = CredentialCache(settings.fingerprint_key, maxsize=L.MAX_DESCRIBED_KEYS)
        #: Names the fingerprint scheme (the secret), so a client described by another one is noticed.
        self.scheme = self.credentials.describe(_SCHEME_PROBE).fingerprint
        self.registry = ClientRegistry(settings.max_clients, settings.capture_client_origin, self.key_fingerprint,
                                       self.scheme)
        self.diagnosis = steps.new_diagnosis(settings)
        self.instruments = create_instruments(meter)
        self.caps = caps = MetricCaps(settings)
        self.metric_template = caps.template
        self.routes: BoundedCache[tuple[ClientView, str, str, str], Route] = BoundedCache(
            L.MAX_ENDPOINTS, L.MAX_ENDPOINT_BYTES)
        self.sent: BoundedCache[SentHeaders, SentCredential] = BoundedCache(
            L.MAX_SENT_CREDENTIALS, L.MAX_SENT_CREDENTIAL_BYTES)
        self.values: BoundedCache[tuple[str, tuple[str, ...]], str] = BoundedCache(
            L.MAX_MASKED_VALUES, L.MAX_MASKED_VALUE_BYTES)
        self.errors: BoundedCache[ErrorKey, Outcome] = BoundedCache(L.MAX_CACHED_ERRORS, L.MAX_CACHED_ERROR_BYTES)
        self.recordings: BoundedCache[tuple[Any, ...], Any] = BoundedCache(
            L.MAX_METRIC_ATTRIBUTE_SETS, L.MAX_METRIC_ATTRIBUTE_BYTES)
        self.describers = Describers(self.credentials.from_authorization, self.credentials.describe,
                                     self.credentials.secret_of, settings.capture_key_hint,
                                     caps.keys.value, caps.context)
        #: True once a real tracer or meter provider is behind ours (see :meth:`live`).
        self.listening = False
        # The steps, bound once (an attribute read each on the call path, not two).
        self._view_client = steps.view_client
        self._resolve_route = steps.resolve_route
        self._read_sent = steps.read_sent
        self._describe_sent = steps.describe_sent
        self._mutated_fields = steps.mutated_fields
        self._response_attributes = steps.response_attributes
        self._outcome = steps.outcome
        self._parse_error = steps.parse_error
        self._diagnose = steps.diagnose
        self._metric_attributes = steps.metric_attributes

    def live(self) -> bool:
        """Whether a real tracer or meter provider is behind ours (:func:`providers_live`); once true it stays
        true (providers are set once), so the call path's check is one attribute read."""
        if not self.listening:
            self.listening = providers_live(self.tracer, self.meter)
        return self.listening

    # ---- what the steps are given ----------------------------------------------------------------
    def key_fingerprint(self, key: Any) -> str | None:
        """A client's key in this instrumentation's fingerprint scheme (None for a key that is not a string)."""
        return self.credentials.describe(key).fingerprint if isinstance(key, str) else None

    # ---- client lifecycle --------------------------------------------------------------------
    def register_client(self, client: Any) -> None:
        """A client just constructed (its origin is the caller's line: four frames up)."""
        self.registry.register(client, origin_depth=4)

    # ---- a call --------------------------------------------------------------------------------
    def start(self, client: Any, options: Any) -> CallState:
        info = getattr(client, INFO_ATTRIBUTE, None)  # the registry's fast path, inline
        if info is None or info.generation != PROCESS.generation or info.ref is None or info.ref() is not client:
            info = self.registry.get(client) or self.registry.get_or_register(client)
        view = info.view
        if view is None or view.base_url is not getattr(client, "base_url", None):
            view = info.view = self._view_client(info, client, self.sdk_version)
        method = options.method.upper()
        url = options.url if isinstance(options.url, str) else str(options.url)
        headers = getattr(options, "headers", None)  # the SDK's helpers name themselves here; usually NotGiven
        helper = helper_of(headers) if headers else ""
        route = self.routes.get((view, method, url, helper)) or self._route(view, method, url, helper)
        return CallState(client, info, view, route,
                         self.tracer.start_span(route.name, kind=_CLIENT, attributes=route.attrs))

    def _route(self, view: ClientView, method: str, url: str, helper: str) -> Route:
        """Resolve (and, for URLs of ordinary length, memoise) an endpoint."""
        if len(url) > L.MAX_CACHED_URL_CHARS:
            return self._resolve_route(view, method, url, self.matcher.match_uncached, self.metric_template, helper)
        route: Route = self._resolve_route(view, method, url, self.matcher.match, self.metric_template, helper)
        return self.routes.put((view, method, url, helper), route, route.size)

    def attempt_started(self, state: CallState, request: Any) -> None:
        """One HTTP attempt, with the request as it is sent: its credential, described, and whether the
        client still holds what it was built with (judged now, not when the call ends)."""
        if state.attempts:  # a retry: log the attempt that came before
            log_attempt(state)
        state.attempts += 1
        state.last_request = request
        state.last_response = None
        state.attempt_start = time.time_ns()
        headers = self._read_sent(request)
        sent = state.sent = self.sent.get(headers) or self._describe(headers)
        info = state.info
        if info.scheme != self.scheme:
            info.rebase_key(state.client, self.key_fingerprint, self.scheme)
        state.mutated = self._mutated_fields(info, state.client, sent.fingerprint if sent.carried else None,
                                             self.key_fingerprint)
        if info.key_is_callable:  # what a copy's sentence looks up for a parent with no fixed key (derived.py)
            info.sent_fingerprint = sent.fingerprint

    def _describe(self, headers: SentHeaders) -> SentCredential:
        return self.sent.put(headers, self._describe_sent(headers, self.describers), approximate_size(headers))

    def finish(self, state: CallState, response: Any = None, exc: BaseException | None = None,
               end_span: bool = True) -> None:
        """Record the outcome (once). ``response`` is the final HTTP response when known."""
        if state.finished:
            return
        state.finished = True
        span = state.span
        try:
            self._finish(state, span, response, exc)
        except Exception as internal:  # noqa: BLE001
            report_internal_error("finish", internal)
        finally:
            if end_span:
                span.end()

    def _finish(self, state: CallState, span: Any, response: Any, exc: BaseException | None) -> None:
        """The steps of recording one call's outcome, in order."""
        elapsed = time.perf_counter() - state.start
        info = state.info
        if info.provider == A.PROVIDER_AZURE and state.last_request is not None:
            self._refine_route(state, span)
        sent = state.sent
        if sent is None:  # no attempt was seen: what the client would have sent
            headers = sent_by_client(state.client)
            sent = self.sent.get(headers) or self._describe(headers)
        mutated = state.mutated
        if mutated is None:  # no attempt was seen: judge the client as it is now
            mutated = state.mutated = self._mutated_fields(info, state.client, None, self.key_fingerprint)
        attrs = dict(sent.span_attrs)
        attrs[A.ATTEMPTS] = state.attempts
        if mutated:
            attrs[A.CLIENT_MUTATED] = mutated
        if response is None:
            response = getattr(exc, "response", None) if exc is not None else state.last_response
        secrets = sent.secrets  # every credential the request carried, and the client's base-path tokens
        if state.view.path_secrets:
            secrets = secrets + state.view.path_secrets
        status = self._response_attributes(attrs, response, secrets, self.values)
        out = error_type = None
        if exc is not None or status >= 400:
            out = self._outcome(status, exc, secrets, self.errors, self._parse_error)
            error_type = out.error_type
            if error_type:
                attrs[A.ERROR] = error_type
        route = state.route
        client_id = info.client_id
        verdicts = self._diagnose(self.diagnosis, attrs, sent, state.view.host, route, client_id, bool(mutated),
                                  status, out)
        key = (route, status, error_type, sent)
        recording = self.recordings.get(key) or self._recording(key, state)
        if recording[0] is not None:  # a piece of the credential in the template (rare): masked
            span.update_name(recording[0].name)
            attrs[A.TEMPLATE] = recording[0].template
        span.set_attributes(attrs)
        if state.attempt_log is not None or state.attempts > 1:
            log_attempt(state, error_type or "")
            attempt_events(span, state.attempt_log or (), secrets)
        for scope, verdict in verdicts:
            if verdict.changed:
                evidence = parent_evidence(self.diagnosis, info, state.view.host, scope, route.key, self.scheme) \
                    if info.copy_changed else ""
                diagnosis_changed(span, sent, scope, verdict, client_id, evidence)
        if error_type:
            span.set_status(out.span_status or Status(StatusCode.ERROR, error_type))  # type: ignore[union-attr]
        instruments = self.instruments
        mattrs = recording[1]
        instruments.requests.add(1, mattrs)
        instruments.duration.record(elapsed, mattrs)
        for scope, verdict in verdicts:
            skey = (route, status, error_type, sent, scope, verdict.label)
            sattrs = self.recordings.get(skey)
            if sattrs is None:
                sattrs = self.recordings.put(skey, scope_error_attributes(mattrs, scope, verdict.label), 1200)
            instruments.scope_errors.add(1, sattrs)

    def _recording(self, key: tuple[Any, ...], state: CallState) -> Any:
        """(masked route or None, metric attributes) of one (route, status, error type, credential)."""
        route, status, error_type, sent = key
        masked = mask_route(route, sent.secrets, self.metric_template)
        shown = masked or route
        mattrs = self._metric_attributes(shown, state.view.host, sent, status, error_type or "")
        return self.recordings.put(key, (masked, mattrs), 1200)

    def _refine_route(self, state: CallState, span: Any) -> None:
        """Azure clients insert ``/deployments/{model}`` while building the request: re-match on the sent URL."""
        url = state.last_request.url
        sent_url = f"{url.scheme}://{url.host}{url.path}"  # no query: api-version would only split the memo
        view, method, helper = state.view, state.route.method, state.route.helper
        route = self.routes.get((view, method, sent_url, helper)) or self._route(view, method, sent_url, helper)
        if route.template != state.route.template:
            state.route = route
            rename_span(span, route)
