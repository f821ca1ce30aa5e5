"""Turns one logical OpenAI call (and its HTTP attempts) into a span, metric records and a diagnosis.

The patch points in :mod:`.instrumentor` only call into here; everything here is written so that
the per-call work is a handful of dict lookups: per-client attributes are computed once per client,
credentials are hashed once per distinct key, endpoints are matched by a precompiled trie.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import NoOpTracer, ProxyTracer, SpanKind, Status, StatusCode

from . import attributes as A
from .clients import ClientInfo, ClientRegistry
from .config import Settings
from .diagnosis import Diagnosis
from .endpoints import EndpointMatcher
from .fingerprint import NO_CREDENTIAL, Credential, CredentialCache, credential_from_authorization
from .redact import safe_message
from .safety import report_internal_error
from .scope_errors import ErrorInfo, parse_error

diagnosis_log = logging.getLogger("otel_openai_scopes.diagnosis")

MAX_ATTEMPT_EVENTS = 16
_CLIENT = SpanKind.CLIENT


_DEPLOYMENT = re.compile(r"/deployments/[^/]+")


class CallState:
    """One logical call in flight."""

    __slots__ = (
        "recorder", "span", "start", "client", "info", "http_client", "method", "template", "operation",
        "scopes", "endpoint_key", "attempts", "attempt_log", "last_request", "last_response", "attempt_start",
        "finished", "status_code", "host",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.attempt_log: list[tuple[int, int, Any, str]] | None = None
        self.last_request: Any = None
        self.last_response: Any = None
        self.attempt_start = 0
        self.finished = False
        self.status_code = 0


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
        self.meter = meter
        self._live = False
        self._errors: dict[tuple, tuple[ErrorInfo, Status]] = {}
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
            child_info.parent_id = parent_info.client_id
            child_info.static_attributes.clear()

    def _client_attributes(self, info: ClientInfo, client: Any) -> dict[str, Any]:
        """Span attributes that only change when the client's base URL does; cached on the info."""
        base_url = getattr(client, "base_url", None)
        cached = info.static_attributes
        if cached and cached.get("_base") is base_url:
            return cached
        host, port, base_path = "", 0, ""
        try:
            host = base_url.host or ""
            port = base_url.port or (443 if base_url.scheme == "https" else 80)
            base_path = (base_url.path or "").rstrip("/")
        except Exception:  # noqa: BLE001
            parts = urlsplit(str(base_url or ""))
            host, port, base_path = parts.hostname or "", parts.port or 443, parts.path.rstrip("/")
        raw_base_path = base_path  # as in sent URLs; the template shows the deployment as a placeholder
        base_path = _DEPLOYMENT.sub("/deployments/{deployment_id}", base_path)
        attrs: dict[str, Any] = {
            A.HOST: host,
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
        info.static_attributes = {"_base": base_url, "_path": base_path, "_raw_path": raw_base_path,
                                  "_attrs": attrs, "_host": host, "_endpoints": {}}
        return info.static_attributes

    # ---- call lifecycle ----------------------------------------------------------------------
    MAX_ENDPOINTS_PER_CLIENT = 128

    def _endpoint_for(self, static: dict[str, Any], method: str, url: str) -> tuple:
        """(span name, start attributes, template, operation, scopes, endpoint key) for one client and URL.

        Cached per client (bounded): an app calls the same few URLs over and over, and the SDK copies the
        attributes it is given, so the cached dict is passed as is.
        """
        cache = static["_endpoints"]
        key = (method, url)
        hit = cache.get(key)
        if hit is not None:
            return hit
        base_path = static["_path"]
        if url.startswith(("http://", "https://")):
            path = urlsplit(url).path
            raw_base = static["_raw_path"]
            if raw_base and path.startswith(raw_base + "/"):
                path = path[len(raw_base):]
        else:
            path = url
        endpoint = self.matcher.match(method, path)
        template = base_path + endpoint.template
        attrs = dict(static["_attrs"])
        attrs[A.HTTP_METHOD] = method
        attrs[A.TEMPLATE] = template
        if endpoint.operation:
            attrs[A.OPERATION] = endpoint.operation
        if endpoint.scopes:
            attrs[A.SCOPE_REQUIRED] = endpoint.scopes
        hit = (f"{method} {template}", attrs, template, endpoint.operation, endpoint.scopes,
               method + " " + endpoint.template)
        if len(cache) >= self.MAX_ENDPOINTS_PER_CLIENT:
            cache.clear()
        cache[key] = hit
        return hit

    def start(self, client: Any, options: Any) -> CallState:
        info = self.registry.get(client) or self.registry.get_or_register(client)
        static = self._client_attributes(info, client)
        method = options.method.upper()
        url = options.url if isinstance(options.url, str) else str(options.url)
        name, attrs, template, operation, scopes, endpoint_key = self._endpoint_for(static, method, url)
        state = CallState()
        state.recorder = self
        state.client = client
        state.info = info
        state.http_client = getattr(client, "_client", None)
        state.method = method
        state.template = template
        state.operation = operation
        state.scopes = scopes
        state.endpoint_key = endpoint_key
        state.host = static["_host"]
        state.span = self.tracer.start_span(name, kind=_CLIENT, attributes=attrs)
        state.start = time.perf_counter()
        return state

    # ---- attempts ------------------------------------------------------------------------------
    def attempt_started(self, state: CallState, request: Any) -> None:
        if state.attempts:  # a retry: log the attempt that came before
            self._log_attempt(state)
        state.attempts += 1
        state.last_request = request
        state.last_response = None
        state.attempt_start = time.time_ns()

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
    def _credential(self, state: CallState) -> tuple[Credential, Any, Any, Any]:
        """(credential description, raw header value or key for masking, organization, project) as sent."""
        req = state.last_request
        if req is not None:
            auth, api_key, org, project = _pick_headers(req.headers, _REQUEST_HEADERS)
            if auth:
                cred, raw = self.credentials.from_authorization(auth), auth
            else:
                raw = api_key  # Azure
                cred = self.credentials.describe(raw) if raw else NO_CREDENTIAL
            return cred, raw, org, project
        key = getattr(state.client, "api_key", None)
        raw = key if isinstance(key, str) else None
        cred = self.credentials.describe(raw) if raw else NO_CREDENTIAL
        return cred, raw, getattr(state.client, "organization", None), getattr(state.client, "project", None)

    def _metric_fingerprint(self, fp: str) -> str:
        keys = self._metric_keys
        if fp in keys:
            return fp
        if len(keys) < self.settings.max_metric_keys:
            keys.add(fp)
            return fp
        return A.FINGERPRINT_OVERFLOW

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

    MAX_CACHED_ERRORS = 256

    def _error_for(self, status: int, exc: BaseException, sent: Any, fingerprint: str) -> tuple[ErrorInfo, Status]:
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
                    key = (status, message, code, etype, fingerprint)
                    hit = self._errors.get(key)
                    if hit is not None:
                        return hit
        self.error_parse_misses += 1
        secret = credential_from_authorization(sent) if isinstance(sent, str) else None
        info = parse_error(status, body, secret)
        if not info.message:
            info = ErrorInfo(status, info.missing_scopes, info.code, info.type,
                             safe_message(getattr(exc, "message", "") or "", secret))
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
        name, _attrs, template, operation, scopes, endpoint_key = self._endpoint_for(
            state.info.static_attributes, state.method, sent)
        if template == state.template:
            return
        state.template, state.operation, state.scopes, state.endpoint_key = template, operation, scopes, endpoint_key
        span.update_name(name)
        span.set_attribute(A.TEMPLATE, template)
        if operation:
            span.set_attribute(A.OPERATION, operation)
        if scopes:
            span.set_attribute(A.SCOPE_REQUIRED, scopes)

    def _finish(self, state: CallState, span: Any, response: Any, exc: BaseException | None) -> None:
        elapsed = time.perf_counter() - state.start
        info = state.info
        if info.provider == A.PROVIDER_AZURE and state.last_request is not None:
            self._refine_endpoint(state, span)
        cred, sent, org, project = self._credential(state)
        if response is None:
            response = getattr(exc, "response", None) if exc is not None else state.last_response
        status = getattr(response, "status_code", 0) if response is not None else 0
        if not isinstance(status, int):
            status = 0
        attrs: dict[str, Any] = {A.ATTEMPTS: state.attempts, A.KEY_KIND: cred.kind}
        if cred.fingerprint:
            attrs[A.KEY_FINGERPRINT] = cred.fingerprint
            if self.settings.capture_key_hint:
                attrs[A.KEY_HINT] = cred.hint
        if org:
            attrs[A.ORGANIZATION] = str(org)
        if project:
            attrs[A.PROJECT] = str(project)
        if status:
            attrs[A.HTTP_STATUS] = status
        if response is not None:
            headers = getattr(response, "headers", None)
            if headers is not None:
                rid, rorg, rproj = _pick_headers(headers, _RESPONSE_HEADERS)
                if rid:
                    attrs[A.REQUEST_ID] = rid[:128]
                if rorg:
                    attrs[A.RESPONSE_ORGANIZATION] = rorg[:128]
                if rproj:
                    attrs[A.RESPONSE_PROJECT] = rproj[:128]
        mutated = info.mutated_fields(state.client)
        if mutated:
            attrs[A.CLIENT_MUTATED] = mutated

        error_type = ""
        error_info: ErrorInfo | None = None
        error_status: Status | None = None
        if exc is not None:
            if status >= 400:
                error_type = str(status)
                error_info, error_status = self._error_for(status, exc, sent, cred.fingerprint)
            else:
                error_type = _error_type_name(exc)
                secret = credential_from_authorization(sent) if isinstance(sent, str) else None
                error_status = Status(StatusCode.ERROR, safe_message(str(exc), secret) or error_type)
        elif status >= 400:
            error_type = str(status)
        if error_type:
            attrs[A.ERROR] = error_type

        cred_tuple = (cred.fingerprint, org or "", project or "", state.host)
        verdicts = []
        if error_info is not None and error_info.code:
            attrs[A.ERROR_CODE] = error_info.code
        if error_info is not None and error_info.missing_scopes:
            attrs[A.SCOPE_MISSING] = error_info.missing_scopes
            attrs[A.SCOPE_ERROR] = True
            for scope in error_info.missing_scopes:
                verdict = self.diagnosis.observe_scope_error(
                    cred_tuple, scope, state.endpoint_key, info.client_id, bool(mutated)
                )
                verdicts.append((scope, verdict))
            attrs.update(verdicts[0][1].span_attributes(info.client_id))
        elif (exc is None and 200 <= status < 400) or status == 404:
            # A 404 means the server went looking for the object: the credential passed the scope check.
            self.diagnosis.observe_success(cred_tuple, state.scopes, state.endpoint_key, info.client_id)

        span.set_attributes(attrs)
        if state.attempt_log is not None or state.attempts > 1:
            self._log_attempt(state, error_type)
            for i, (ts, st, rid, err) in enumerate(state.attempt_log or ()):
                ev = {A.EVENT_ATTEMPT_RETRY: i}
                if st:
                    ev[A.HTTP_STATUS] = st
                if rid:
                    ev[A.REQUEST_ID] = str(rid)[:128]
                if err and not st:
                    ev[A.ERROR] = err
                span.add_event(A.EVENT_ATTEMPT, ev, timestamp=ts)
        for scope, verdict in verdicts:
            if verdict.changed:
                self._diagnosis_changed(span, cred, scope, verdict, info.client_id)
        if error_type:
            # Status and error.type carry the error; no "exception" event: during an incident this runs
            # thousands of times a minute, and an event costs a third of a whole span.
            span.set_status(error_status or Status(StatusCode.ERROR, error_type))

        mattrs = {
            A.HTTP_METHOD: state.method,
            A.TEMPLATE: state.template,
            A.HOST: state.host,
            A.KEY_FINGERPRINT: self._metric_fingerprint(cred.fingerprint) if cred.fingerprint else "none",
        }
        if status:
            mattrs[A.HTTP_STATUS] = status
        if error_type:
            mattrs[A.ERROR] = error_type
        if state.operation:
            mattrs[A.OPERATION] = state.operation
        self.requests.add(1, mattrs)
        self.duration.record(elapsed, mattrs)
        for scope, verdict in verdicts:
            sattrs = dict(mattrs)
            sattrs[A.SCOPE] = scope
            sattrs[A.DIAGNOSIS] = verdict.label
            self.scope_errors.add(1, sattrs)

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
