"""Turns one logical OpenAI call (and its HTTP attempts) into a span, metric records and a diagnosis.

The patch points in :mod:`.instrumentor` only call into here; everything here is written so that
the per-call work is a handful of dict lookups: per-client attributes are computed once per client,
credentials are hashed once per distinct key, endpoints are matched by a precompiled trie.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import NoOpTracer, ProxyTracer, SpanKind, Status, StatusCode

from . import attributes as A
from .clients import INFO_ATTRIBUTE, ClientInfo, ClientRegistry
from .config import Settings
from .diagnosis import Diagnosis
from .endpoints import EndpointMatcher, sanitize_base_path
from .fingerprint import NO_CREDENTIAL, Credential, CredentialCache, credential_from_authorization
from .forking import PROCESS
from .redact import mask_credentials, mask_request_id, mask_value, safe_message
from .safety import report_internal_error
from .scope_errors import ErrorInfo, parse_error

diagnosis_log = logging.getLogger("otel_openai_scopes.diagnosis")

MAX_ATTEMPT_EVENTS = 16
_CLIENT = SpanKind.CLIENT
#: Header values (organization, project) masked once per distinct (value, credential), not per call.
MAX_CACHED_VALUES = 1024


class CallState:
    """One logical call in flight."""

    recorder: Recorder
    span: Any
    start: float
    client: Any
    info: ClientInfo
    http_client: Any
    method: str
    endpoint: EndpointHit
    host: str

    __slots__ = (
        "attempt_log",
        "attempt_start",
        "attempts",
        "client",
        "endpoint",
        "finished",
        "host",
        "http_client",
        "info",
        "last_request",
        "last_response",
        "method",
        "mutated",
        "recorder",
        "sent",
        "span",
        "start",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.attempt_log: list[tuple[int, int, Any, str]] | None = None
        self.last_request: Any = None
        self.last_response: Any = None
        self.attempt_start = 0
        self.finished = False
        # (Authorization, api-key, OpenAI-Organization, OpenAI-Project) of the last attempt, as sent.
        self.sent: tuple[str | None, ...] | None = None
        # Fields of the client that differ from construction, judged when the last attempt was sent.
        self.mutated: list[str] | None = None


class ClientState:
    """What the recorder derives once per client (and again when its base URL changes)."""

    __slots__ = ("attrs", "base_path", "base_url", "host", "owner", "path_secrets", "raw_base_path")

    def __init__(self, owner: Any, base_url: Any, base_path: str, raw_base_path: str, host: str,
                 attrs: dict[str, Any], path_secrets: tuple[str, ...] = ()) -> None:
        self.owner = owner
        #: Base-path segments shown as placeholders (a gateway token, say): masked in error messages too.
        self.path_secrets = path_secrets
        self.base_url = base_url
        self.base_path = base_path  # sanitized, for templates
        self.raw_base_path = raw_base_path  # as in sent URLs
        self.host = host
        self.attrs = attrs  # span attributes that never change for this client


class SentCredential:
    """What an attempt sent, described: the credential, the raw secret (for masking), organization and project
    (for the diagnosis's key tuple), and the span attributes they give."""

    __slots__ = ("attrs", "cred", "org", "project", "secret")

    def __init__(self, cred: Credential, secret: str | None, org: str, project: str, attrs: dict[str, Any]) -> None:
        self.cred = cred
        self.secret = secret
        self.org = org
        self.project = project
        self.attrs = attrs


class EndpointHit:
    """One (client, method, URL) resolved: what a span and metric records of that call carry."""

    __slots__ = (
        "attrs",
        "checked_for",
        "key",
        "known",
        "metric_attrs",
        "metric_template",
        "name",
        "operation",
        "scopes",
        "size",
        "template",
    )

    def __init__(self, name: str, attrs: dict[str, Any], template: str, operation: str, scopes: tuple[str, ...],
                 key: str, known: bool, size: int) -> None:
        self.name = name
        self.attrs = attrs
        self.template = template
        self.operation = operation
        self.scopes = scopes
        self.key = key  # "GET /threads/{thread_id}/runs": the diagnosis's endpoint key
        self.known = known
        self.checked_for = ""  # the credential fingerprint the template was last checked against
        self.metric_template = ""  # the template on metrics (the overflow value past the cap)
        self.size = size  # approximate bytes held, for the cache's byte bound
        #: Metric attribute dicts of this endpoint's outcomes (status, error type, fingerprint[, scope, label]):
        #: the same few outcomes repeat call after call. Bounded (cleared when full).
        self.metric_attrs: dict[tuple[Any, ...], dict[str, Any]] = {}


def _error_type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _header(headers: Any, name: str) -> Any:
    try:
        return headers.get(name)
    except Exception:  # noqa: BLE001 - odd header containers must not break the call
        return None


_REQUEST_HEADERS = {b"authorization": 0, b"api-key": 1, b"openai-organization": 2, b"openai-project": 3}
_RESPONSE_HEADERS = {b"x-request-id": 0, b"openai-organization": 1, b"openai-project": 2}


def _pick_headers(headers: Any, wanted: dict[bytes, int]) -> list[str | None]:
    """The wanted headers in one pass over the raw list (one ``get`` each scans the list every time)."""
    out: list[str | None] = [None] * len(wanted)
    items = getattr(headers, "_list", None)  # httpx / httpx2: (raw key, lower-cased key, value) triples
    if type(items) is list:
        for _raw, key, value in items:
            i = wanted.get(key)
            if i is not None and out[i] is None:
                out[i] = value.decode("latin-1")
        return out
    for name, i in wanted.items():  # another Headers type: look each one up by name
        value = _header(headers, name.decode())
        out[i] = value if isinstance(value, str) else None
    return out


class Recorder:
    """Holds the tracer, instruments, caches and diagnosis for one instrumentation."""

    def __init__(
        self,
        tracer: trace.Tracer,
        meter: Any,
        settings: Settings,
        matcher: EndpointMatcher,
        sdk_version: str,
    ) -> None:
        self.tracer = tracer
        self.settings = settings
        self.matcher = matcher
        self.sdk_version = sdk_version
        self.registry = ClientRegistry(settings.max_clients, settings.capture_client_origin)
        self.credentials = CredentialCache(settings.fingerprint_key)
        self.diagnosis = Diagnosis(settings.diagnosis_window, settings.diagnosis_max_entries)
        self.requests = meter.create_counter(
            A.METRIC_REQUESTS, unit=A.METRIC_REQUESTS_UNIT, description="OpenAI API calls (logical, retries included)"
        )
        self.scope_errors = meter.create_counter(
            A.METRIC_SCOPE_ERRORS,
            unit=A.METRIC_SCOPE_ERRORS_UNIT,
            description="Missing scopes named by OpenAI error responses, one per scope",
        )
        self.duration = meter.create_histogram(
            A.METRIC_DURATION, unit=A.METRIC_DURATION_UNIT, description="Duration of OpenAI API calls"
        )
        self._metric_keys: set[str] = set()
        self._known_templates: set[str] = set()
        self._unknown_templates: set[str] = set()
        self.meter = meter
        self._live = False
        self._errors: dict[tuple[Any, ...], tuple[ErrorInfo, Status]] = {}
        self._endpoints: dict[tuple[ClientState, str, str], EndpointHit] = {}
        self._endpoint_bytes = 0
        self._values: dict[tuple[Any, str | None], str] = {}
        self._sent: dict[tuple[Any, ...], SentCredential] = {}
        self.error_parse_misses = 0

    # ---- is anything listening? ---------------------------------------------------------------
    def live(self) -> bool:
        """Whether a real tracer or meter provider is behind our tracer and meter.

        With only the API installed (or no provider set yet) every span and metric would be dropped, so
        the call path skips all work: the cost is this check. Once true it stays true (providers are
        set once); until then it follows the global proxies, so an SDK configured after
        ``instrument()`` is picked up.
        """
        if self._live:
            return True
        tracer = self.tracer
        if isinstance(tracer, ProxyTracer):
            tracer = tracer._tracer  # resolves to the real tracer once a provider is set
        tracing = not isinstance(tracer, NoOpTracer)
        meter = self.meter
        if hasattr(meter, "_real_meter"):  # the API's proxy meter
            metrics = meter._real_meter is not None
        else:
            metrics = not isinstance(meter, NoOpMeter)
        self._live = tracing or metrics
        return self._live

    # ---- client lifecycle --------------------------------------------------------------------
    def register_client(self, client: Any) -> None:
        self.registry.register(client, origin_depth=4)

    def set_parent(self, child: Any, parent: Any) -> None:
        child_info = self.registry.get_or_register(child)
        parent_info = self.registry.get_or_register(parent)
        if child_info is not parent_info:
            child_info.set_parent(parent_info)

    def _client_state(self, info: ClientInfo, client: Any) -> ClientState:
        """Span attributes that only change when the client's base URL does; cached on the info."""
        base_url = getattr(client, "base_url", None)
        cached = info.state
        if cached is not None and cached.base_url is base_url and cached.owner is self:
            return cached  # type: ignore[no-any-return]
        host, port, raw_base_path = "", 0, ""
        try:
            assert base_url is not None
            host = base_url.host or ""
            port = base_url.port or (443 if base_url.scheme == "https" else 80)
            raw_base_path = (base_url.path or "").rstrip("/")
        except Exception:  # noqa: BLE001
            parts = urlsplit(str(base_url or ""))
            host, port, raw_base_path = parts.hostname or "", parts.port or 443, parts.path.rstrip("/")
        key = getattr(client, "api_key", None)
        # The template shows credential- or id-like base-path segments as placeholders.
        base_path = sanitize_base_path(raw_base_path)
        if isinstance(key, str) and base_path:
            base_path = mask_credentials(base_path, key)
        attrs: dict[str, Any] = {
            A.HOST: mask_value(host, key if isinstance(key, str) else None, limit=255),
            A.PORT: port,
            A.PROVIDER: info.provider,
            A.CLIENT_ID: info.client_id,
            A.CLIENT_ASYNC: info.is_async,
            A.SDK_VERSION: self.sdk_version,
        }
        if info.origin:
            attrs[A.CLIENT_ORIGIN] = info.origin
        if info.parent_id:
            attrs[A.CLIENT_PARENT_ID] = info.parent_id
        shown = set(base_path.split("/"))
        path_secrets = tuple(seg for seg in raw_base_path.split("/") if len(seg) >= 8 and seg not in shown)
        state = ClientState(self, base_url, base_path, raw_base_path, attrs[A.HOST], attrs, path_secrets)
        info.state = state
        return state

    # ---- call lifecycle ----------------------------------------------------------------------
    #: Bounds of the endpoint cache, shared by all clients: entries and approximate bytes.
    MAX_ENDPOINTS = 4096
    MAX_ENDPOINT_BYTES = 2 * 1024 * 1024
    #: Longer URLs (rare) are matched every time rather than cached (here and in the matcher's cache).
    MAX_CACHED_URL_CHARS = 256

    def _endpoint_for(self, client_state: ClientState, method: str, url: str) -> EndpointHit:
        """The resolved endpoint for one client and URL.

        Cached (bounded in entries and bytes): an app calls the same few URLs over and over, and the SDK
        copies the attributes it is given, so the cached dict is passed as is.
        """
        cache = self._endpoints
        key = (client_state, method, url)
        hit = cache.get(key)
        if hit is not None:
            return hit
        cacheable = len(url) <= self.MAX_CACHED_URL_CHARS
        if url.startswith(("http://", "https://")):
            path = urlsplit(url).path
            raw_base = client_state.raw_base_path
            if raw_base and path.startswith(raw_base + "/"):
                path = path[len(raw_base):]
        else:
            path = url
        endpoint = self.matcher.match(method, path) if cacheable else self.matcher.match_uncached(method, path)
        template = client_state.base_path + endpoint.template
        attrs = dict(client_state.attrs)
        attrs[A.HTTP_METHOD] = method
        attrs[A.TEMPLATE] = template
        if endpoint.operation:
            attrs[A.OPERATION] = endpoint.operation
        if endpoint.scopes:
            attrs[A.SCOPE_REQUIRED] = endpoint.scopes
        name = f"{method} {template}"
        size = 1280 + 2 * (len(url) + len(name) + len(template))
        hit = EndpointHit(name, attrs, template, endpoint.operation, endpoint.scopes,
                          method + " " + endpoint.template, endpoint.known, size)
        if not cacheable:
            return hit
        if len(cache) >= self.MAX_ENDPOINTS or self._endpoint_bytes + size > self.MAX_ENDPOINT_BYTES:
            cache.clear()
            self._endpoint_bytes = 0
        cache[key] = hit
        self._endpoint_bytes += size
        return hit

    def start(self, client: Any, options: Any) -> CallState:
        info = getattr(client, INFO_ATTRIBUTE, None)  # the registry's fast path, inline
        if info is None or info.generation != PROCESS.generation or info.ref is None or info.ref() is not client:
            info = self.registry.get(client) or self.registry.get_or_register(client)
        client_state = info.state
        if client_state is None or client_state.owner is not self or \
                client_state.base_url is not getattr(client, "base_url", None):
            client_state = self._client_state(info, client)
        method = options.method.upper()
        url = options.url if isinstance(options.url, str) else str(options.url)
        endpoint = self._endpoint_for(client_state, method, url)
        state = CallState()
        state.recorder = self
        state.client = client
        state.info = info
        state.http_client = getattr(client, "_client", None)
        state.method = method
        state.endpoint = endpoint
        state.host = client_state.host
        state.span = self.tracer.start_span(endpoint.name, kind=_CLIENT, attributes=endpoint.attrs)
        state.start = time.perf_counter()
        return state

    # ---- attempts ------------------------------------------------------------------------------
    def attempt_started(self, state: CallState, request: Any) -> None:
        """One HTTP attempt, with the request as it is sent: its credential headers, and whether the client
        still holds what it was built with (judged now, not when the call ends)."""
        if state.attempts:  # a retry: log the attempt that came before
            self._log_attempt(state)
        state.attempts += 1
        state.last_request = request
        state.last_response = None
        state.attempt_start = time.time_ns()
        sent = tuple(_pick_headers(request.headers, _REQUEST_HEADERS))
        state.sent = sent
        state.mutated = state.info.mutated_fields(state.client, sent[0], sent[1])

    def _log_attempt(self, state: CallState, error: str = "") -> None:
        log = state.attempt_log
        if log is None:
            log = state.attempt_log = []
        if len(log) < MAX_ATTEMPT_EVENTS:
            resp = state.last_response
            status = getattr(resp, "status_code", 0) if resp is not None else 0
            rid = _header(resp.headers, "x-request-id") if resp is not None else None
            log.append((state.attempt_start, status, rid, error))

    # ---- finishing -----------------------------------------------------------------------------
    def finish(self, state: CallState, response: Any = None, exc: BaseException | None = None,
               end_span: bool = True) -> None:
        """Record the outcome. ``response`` is the final HTTP response when known."""
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
        """The steps of recording one call's outcome, each one idea."""
        elapsed = time.perf_counter() - state.start
        if state.info.provider == A.PROVIDER_AZURE and state.last_request is not None:
            self._refine_endpoint(state, span)
        sent = self._credential(state)
        cred, secret = sent.cred, sent.secret
        attrs = self._credential_attributes(state, sent)
        if response is None:
            response = getattr(exc, "response", None) if exc is not None else state.last_response
        status = self._response_attributes(attrs, response, secret)
        if exc is None and status < 400:  # the common case, without a call
            error_type, error_info, error_status = "", None, None
        else:
            error_type, error_info, error_status = self._error(state, status, exc, secret, cred.fingerprint)
            if error_type:
                attrs[A.ERROR] = error_type
        verdicts = self._diagnose(state, attrs, sent, status, exc, error_info)
        endpoint = state.endpoint
        if endpoint.checked_for != cred.fingerprint or not endpoint.metric_template:
            self._check_template(state, span, cred.fingerprint, secret)
        span.set_attributes(attrs)
        if state.attempt_log is not None or state.attempts > 1:
            self._attempt_events(state, span, error_type, secret)
        for scope, verdict in verdicts:
            if verdict.changed:
                self._diagnosis_changed(span, cred, scope, verdict, state.info.client_id)
        if error_type:
            # Status and error.type carry the error; no "exception" event: during an incident this runs
            # thousands of times a minute, and an event costs a third of a whole span.
            span.set_status(error_status or Status(StatusCode.ERROR, error_type))
        self._record_metrics(state, cred, status, error_type, verdicts, elapsed)

    def _credential(self, state: CallState) -> SentCredential:
        """The credential, organization and project the call's last attempt sent, described once per distinct
        combination (the same few repeat call after call)."""
        sent = state.sent
        if sent is None and state.last_request is not None:
            sent = tuple(_pick_headers(state.last_request.headers, _REQUEST_HEADERS))
        if sent is None:  # no attempt was seen: the client's values
            client = state.client
            key = getattr(client, "api_key", None)
            sent = (None, key if isinstance(key, str) else None, getattr(client, "organization", None),
                    getattr(client, "project", None))
        hit = self._sent.get(sent)
        if hit is None:
            hit = self._describe_sent(*sent)
            if len(self._sent) >= MAX_CACHED_VALUES:
                self._sent.clear()
            self._sent[sent] = hit
        return hit

    def _describe_sent(self, auth: str | None, api_key: str | None, org: Any, project: Any) -> SentCredential:
        if auth:
            cred, secret = self.credentials.from_authorization(auth), credential_from_authorization(auth)
        else:  # Azure: an api-key header
            cred, secret = (self.credentials.describe(api_key) if api_key else NO_CREDENTIAL), api_key
        attrs: dict[str, Any] = {A.KEY_KIND: cred.kind}
        if cred.fingerprint:
            attrs[A.KEY_FINGERPRINT] = cred.fingerprint
            if self.settings.capture_key_hint:
                attrs[A.KEY_HINT] = cred.hint
        if org:
            attrs[A.ORGANIZATION] = mask_value(str(org), secret) or "***"
        if project:
            attrs[A.PROJECT] = mask_value(str(project), secret) or "***"
        return SentCredential(cred, secret, str(org or ""), str(project or ""), attrs)

    def _masked(self, value: Any, secret: str | None) -> str:
        """A header value that repeats call after call (organization, project), masked once per credential
        (callers look in ``_values`` first)."""
        masked = mask_value(str(value), secret) or "***"
        if len(self._values) >= MAX_CACHED_VALUES:
            self._values.clear()
        self._values[(value, secret)] = masked
        return masked

    def _credential_attributes(self, state: CallState, sent: SentCredential) -> dict[str, Any]:
        attrs = dict(sent.attrs)
        attrs[A.ATTEMPTS] = state.attempts
        mutated = state.mutated
        if mutated is None:  # no attempt was seen: judge the client as it is now
            mutated = state.mutated = state.info.mutated_fields(state.client)
        if mutated:
            attrs[A.CLIENT_MUTATED] = mutated
        return attrs

    def _response_attributes(self, attrs: dict[str, Any], response: Any, secret: str | None) -> int:
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
            rid, rorg, rproj = _pick_headers(headers, _RESPONSE_HEADERS)
            if rid:
                attrs[A.REQUEST_ID] = mask_request_id(rid, secret)
            values = self._values
            if rorg:
                attrs[A.RESPONSE_ORGANIZATION] = values.get((rorg, secret)) or self._masked(rorg, secret)
            if rproj:
                attrs[A.RESPONSE_PROJECT] = values.get((rproj, secret)) or self._masked(rproj, secret)
        return status

    def _error(self, state: CallState, status: int, exc: BaseException | None, secret: str | None,
               fingerprint: str) -> tuple[str, ErrorInfo | None, Status | None]:
        """(error.type, parsed error body, span status) of the outcome; ``""`` and Nones on success."""
        if exc is not None:
            client_state = state.info.state
            path_secrets = client_state.path_secrets if client_state is not None else ()
            if status >= 400:
                info, error_status = self._error_for(status, exc, fingerprint, secret, *path_secrets)
                return str(status), info, error_status
            error_type = _error_type_name(exc)
            message = safe_message(str(exc), secret, *path_secrets)
            return error_type, None, Status(StatusCode.ERROR, message or error_type)
        if status >= 400:
            return str(status), None, None
        return "", None, None

    def _diagnose(self, state: CallState, attrs: dict[str, Any], sent: SentCredential,
                  status: int, exc: BaseException | None, error_info: ErrorInfo | None) -> list[Any]:
        """Feed the outcome to the diagnosis; scope-error attributes onto ``attrs``; returns (scope, verdict)s."""
        endpoint = state.endpoint
        client_id = state.info.client_id
        cred_tuple = (sent.cred.fingerprint, sent.org, sent.project, state.host)
        verdicts: list[Any] = []
        if error_info is not None and error_info.code:
            attrs[A.ERROR_CODE] = error_info.code
        if error_info is not None and error_info.missing_scopes:
            attrs[A.SCOPE_MISSING] = error_info.missing_scopes
            attrs[A.SCOPE_ERROR] = True
            mutated = bool(state.mutated)
            for scope in error_info.missing_scopes:
                verdict = self.diagnosis.observe_scope_error(cred_tuple, scope, endpoint.key, client_id, mutated)
                verdicts.append((scope, verdict))
            attrs.update(verdicts[0][1].span_attributes(client_id))
        elif (exc is None and 200 <= status < 400) or status == 404:
            # A 404 means the server went looking for the object: the credential passed the scope check.
            self.diagnosis.observe_success(cred_tuple, endpoint.scopes, endpoint.key, client_id)
        return verdicts

    def _check_template(self, state: CallState, span: Any, fingerprint: str, secret: str | None) -> None:
        """A template never carries a piece of the credential sent (checked once per endpoint and credential);
        the template on metrics is capped in distinct values."""
        endpoint = state.endpoint
        template = endpoint.template
        if secret and len(secret) >= 8:
            masked = mask_credentials(template, secret)
            if masked != template:
                # Rare: give this call its own endpoint, so the cached one keeps its template for other keys.
                endpoint = EndpointHit(f"{state.method} {masked}", endpoint.attrs, masked, endpoint.operation,
                                       endpoint.scopes, endpoint.key, endpoint.known, 0)
                state.endpoint = endpoint
                span.update_name(endpoint.name)
                span.set_attribute(A.TEMPLATE, masked)
        endpoint.metric_template = self._metric_template(endpoint.template, endpoint.known)
        endpoint.checked_for = fingerprint

    def _metric_template(self, template: str, known: bool) -> str:
        """Known endpoints keep their template (bounded by the scope map); other templates up to the cap."""
        seen = self._known_templates if known else self._unknown_templates
        if template in seen:
            return template
        limit = self.MAX_KNOWN_TEMPLATES if known else self.settings.max_metric_templates
        if len(seen) < limit:
            seen.add(template)
            return template
        return A.TEMPLATE_OVERFLOW

    #: Bound of distinct known-endpoint templates on metrics (scope-map endpoints x distinct base paths).
    MAX_KNOWN_TEMPLATES = 2048

    def _attempt_events(self, state: CallState, span: Any, error_type: str, secret: str | None) -> None:
        self._log_attempt(state, error_type)
        for i, (ts, st, rid, err) in enumerate(state.attempt_log or ()):
            ev: dict[str, Any] = {A.EVENT_ATTEMPT_RETRY: i}
            if st:
                ev[A.HTTP_STATUS] = st
            if rid:
                ev[A.REQUEST_ID] = mask_request_id(str(rid), secret)
            if err and not st:
                ev[A.ERROR] = err
            span.add_event(A.EVENT_ATTEMPT, ev, timestamp=ts)

    def _record_metrics(self, state: CallState, cred: Credential, status: int, error_type: str,
                        verdicts: list[Any], elapsed: float) -> None:
        endpoint = state.endpoint
        fp = cred.fingerprint
        cache = endpoint.metric_attrs
        key: tuple[Any, ...] = (status, error_type, fp)
        mattrs = cache.get(key)
        if mattrs is None:
            mattrs = {
                A.HTTP_METHOD: state.method,
                A.TEMPLATE: endpoint.metric_template or A.TEMPLATE_OVERFLOW,
                A.HOST: state.host,
                A.KEY_FINGERPRINT: self._metric_fingerprint(fp) if fp else "none",
            }
            if status:
                mattrs[A.HTTP_STATUS] = status
            if error_type:
                mattrs[A.ERROR] = error_type
            if endpoint.operation:
                mattrs[A.OPERATION] = endpoint.operation
            if len(cache) >= self.MAX_METRIC_ATTRS_PER_ENDPOINT:
                cache.clear()
            cache[key] = mattrs
        self.requests.add(1, mattrs)
        self.duration.record(elapsed, mattrs)
        for scope, verdict in verdicts:
            skey = (status, error_type, fp, scope, verdict.label)
            sattrs = cache.get(skey)
            if sattrs is None:
                sattrs = dict(mattrs)
                sattrs[A.SCOPE] = scope
                sattrs[A.DIAGNOSIS] = verdict.label
                if len(cache) >= self.MAX_METRIC_ATTRS_PER_ENDPOINT:
                    cache.clear()
                cache[skey] = sattrs
            self.scope_errors.add(1, sattrs)

    MAX_METRIC_ATTRS_PER_ENDPOINT = 32

    def _metric_fingerprint(self, fp: str) -> str:
        keys = self._metric_keys
        if fp in keys:
            return fp
        if len(keys) < self.settings.max_metric_keys:
            keys.add(fp)
            return fp
        return A.FINGERPRINT_OVERFLOW

    MAX_CACHED_ERRORS = 256

    def _error_for(self, status: int, exc: BaseException, fingerprint: str,
                   *secrets: str | None) -> tuple[ErrorInfo, Status]:
        """Error body -> (parsed error, span status). During an incident the same body arrives thousands of
        times, so each distinct (status, message, code, type, key) is parsed and masked once."""
        body = getattr(exc, "body", None)
        key = None
        if isinstance(body, dict):
            err = body.get("error", body)  # the SDK's APIStatusError.body is already the inner "error" object
            if isinstance(err, dict):
                message, code, etype = err.get("message"), err.get("code"), err.get("type")
                if isinstance(message, str) and len(message) <= 4096 and isinstance(code, (str, type(None))) \
                        and isinstance(etype, (str, type(None))):
                    key = (status, message, code, etype, fingerprint, secrets[1:])
                    hit = self._errors.get(key)
                    if hit is not None:
                        return hit
        self.error_parse_misses += 1
        info = parse_error(status, body, *secrets)
        if not info.message:
            info = ErrorInfo(status, info.missing_scopes, info.code, info.type,
                             safe_message(getattr(exc, "message", "") or "", *secrets))
        result = (info, Status(StatusCode.ERROR, info.message or str(status)))
        if key is not None:
            if len(self._errors) >= self.MAX_CACHED_ERRORS:
                self._errors.clear()
            self._errors[key] = result
        return result

    def _refine_endpoint(self, state: CallState, span: Any) -> None:
        """Azure clients insert ``/deployments/{model}`` while building the request: re-match on the sent URL."""
        url = state.last_request.url
        sent = f"{url.scheme}://{url.host}{url.path}"  # no query: api-version would only split the cache
        client_state = state.info.state
        if client_state is None:
            return
        endpoint = self._endpoint_for(client_state, state.method, sent)
        if endpoint.template == state.endpoint.template:
            return
        state.endpoint = endpoint
        span.update_name(endpoint.name)
        span.set_attribute(A.TEMPLATE, endpoint.template)
        if endpoint.operation:
            span.set_attribute(A.OPERATION, endpoint.operation)
        if endpoint.scopes:
            span.set_attribute(A.SCOPE_REQUIRED, endpoint.scopes)

    def _diagnosis_changed(self, span: Any, cred: Credential, scope: str, verdict: Any, client_id: str) -> None:
        attrs = {
            A.DIAGNOSIS: verdict.label,
            A.DIAGNOSIS_PREVIOUS: verdict.previous or "none",
            A.SCOPE: scope,
            A.KEY_FINGERPRINT: cred.fingerprint,
            A.CLIENT_ID: client_id,
        }
        span.add_event(A.EVENT_DIAGNOSIS_CHANGED, attrs)
        diagnosis_log.info(
            "diagnosis for key %s scope %s: %s -> %s (client %s)",
            cred.fingerprint or "none", scope, verdict.previous or "none", verdict.label, client_id,
            extra={k.replace(".", "_"): v for k, v in attrs.items()},
        )
