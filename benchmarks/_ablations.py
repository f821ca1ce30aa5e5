"""Monkeypatches of otel-openai-scopes used by ``hotspots.py`` to price parts of its per-call path.

Each ablation replaces one computation with a lookup of the value it computed before (after a
few real calls, so the diagnosis is in its steady state): the span, events and metrics keep the
same shape and values, and ``ours - ours+ablation`` under callgrind is what that computation
costs per call (an upper bound on what any fix of it can save). ``no-send-hook`` is the
exception: it removes the per-attempt hook and so changes the output (no request/response
headers); it prices the hook itself.

Applied in the worker before ``instrument()``; nothing under src/ is edited.
"""

from __future__ import annotations

from typing import Any, Callable

REAL_CALLS = 10  # real calls before replaying (diagnosis labels settle after 3 failures)


def _replay(fn: Callable, key: Callable[..., Any]) -> Callable:
    seen: dict = {}

    def wrapper(*args, **kwargs):
        k = key(*args, **kwargs)
        entry = seen.get(k)
        if entry is not None and entry[0] >= REAL_CALLS:
            return entry[1]
        value = fn(*args, **kwargs)
        seen[k] = ((entry[0] if entry else 0) + 1, value)
        return value

    return wrapper


def _mutated() -> None:
    from otel_openai_scopes.clients import ClientInfo

    ClientInfo.mutated_fields = _replay(ClientInfo.mutated_fields, lambda self, client, *sent: (id(client), sent))


def _base_url_identity() -> None:
    """mutated_fields with an identity check before the httpx2.URL equality (a proposed fix)."""
    from otel_openai_scopes import clients

    real_hash = clients._value_hash

    def mutated_fields(self, client):
        changed = []
        if not self.key_is_callable:
            key = getattr(client, "api_key", None)
            if real_hash(key) != self.key_token:
                changed.append("api_key")
        if getattr(client, "organization", None) != self.organization:
            changed.append("organization")
        if getattr(client, "project", None) != self.project:
            changed.append("project")
        url = getattr(client, "base_url", None)
        if url is not self.base_url and url != self.base_url:
            changed.append("base_url")
        return changed

    clients.ClientInfo.mutated_fields = mutated_fields


def _parse_error() -> None:
    """The error-body path, whichever the sources have: Recorder._error_for (body -> cached ErrorInfo and
    Status), Recorder._parse_error (an lru cache in front of parse_error), or recorder.parse_error."""
    from otel_openai_scopes import recorder

    def key(status, body, *secrets):
        err = body.get("error") if isinstance(body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else body
        return status, str(msg), secrets

    if hasattr(recorder.Recorder, "_error_for"):  # (status, exc, fingerprint, *secrets) -> (ErrorInfo, Status)
        def key_for(self, status, exc, fingerprint, *secrets):
            return key(status, getattr(exc, "body", None), fingerprint, *secrets)

        recorder.Recorder._error_for = _replay(recorder.Recorder._error_for, key_for)
    elif hasattr(recorder.Recorder, "_parse_error"):
        recorder.Recorder._parse_error = _replay(
            recorder.Recorder._parse_error, lambda self, status, body, *secrets: key(status, body, *secrets))
    else:
        recorder.parse_error = _replay(recorder.parse_error, key)


def _credential() -> None:
    from otel_openai_scopes.recorder import Recorder

    Recorder._credential = _replay(Recorder._credential, lambda self, state: id(state.client))


def _diagnosis() -> None:
    from otel_openai_scopes.diagnosis import Diagnosis

    real_success = Diagnosis.observe_success
    counts: dict = {}

    def observe_success(self, cred, scopes, endpoint, client_id):
        k = (cred, endpoint)
        n = counts.get(k, 0)
        if n < REAL_CALLS:
            counts[k] = n + 1
            real_success(self, cred, scopes, endpoint, client_id)

    Diagnosis.observe_success = observe_success
    Diagnosis.observe_scope_error = _replay(
        Diagnosis.observe_scope_error, lambda self, cred, scope, endpoint, client_id, mutated: (cred, scope, endpoint))


def _start() -> None:
    """Recorder.start with its per-call computations (URL split, endpoint match, attribute dict) cached
    per (client, method, url): a prototype of caching the start-of-call attributes per client and route."""
    import time

    from otel_openai_scopes.recorder import _CLIENT, CallState, Recorder

    dynamic = {"span", "start", "attempts", "attempt_log", "last_request", "last_response", "attempt_start",
               "finished", "status_code", "client", "sent", "mutated"}
    route_slots = [s for s in CallState.__slots__ if s not in dynamic]
    real_start = Recorder.start
    cache: dict = {}

    def start(self, client, options):
        k = (id(client), options.method, options.url)
        hit = cache.get(k)
        if hit is None:
            state = real_start(self, client, options)
            attrs = getattr(state.span, "attributes", None)
            if not attrs:  # no SDK: attributes cannot be read back from a no-op span
                return state
            hit = cache[k] = ([(s, getattr(state, s)) for s in route_slots if hasattr(state, s)],
                              dict(attrs), state.span.name)
            return state
        slots, attrs, name = hit
        state = CallState()
        for slot, value in slots:
            setattr(state, slot, value)
        state.client = client
        state.span = self.tracer.start_span(name, kind=_CLIENT, attributes=attrs)
        state.start = time.perf_counter()
        return state

    Recorder.start = start


def _masking() -> None:
    """Header values masked for pieces of the sent credential (redact.mask_value) replayed."""
    from otel_openai_scopes import recorder

    recorder.mask_value = _replay(recorder.mask_value, lambda value, *secrets, **kw: (value[:4], secrets))


def _no_send_hook() -> None:
    from otel_openai_scopes.instrumentor import OpenAIScopesInstrumentor

    real_wrap = OpenAIScopesInstrumentor._wrap

    def _wrap(self, module, cls_name, attr, wrapper):
        if attr in ("_send_request", "send"):
            return None
        return real_wrap(self, module, cls_name, attr, wrapper)

    OpenAIScopesInstrumentor._wrap = _wrap


ABLATIONS: dict[str, tuple[Callable[[], None], str]] = {
    "mutated": (_mutated, "ClientInfo.mutated_fields (clients.py) replayed"),
    "base-url-is": (_base_url_identity, "mutated_fields with `is` before the httpx2.URL `!=` (proposed fix)"),
    "credential": (_credential, "Recorder._credential: request header reads, Bearer parse, describe() lookup"),
    "parse-error": (_parse_error, "error body -> ErrorInfo (Recorder._error_for / _parse_error / parse_error) replayed"),
    "diagnosis": (_diagnosis, "Diagnosis.observe_success/observe_scope_error replayed"),
    "start": (_start, "Recorder.start: URL split, endpoint match, attrs dict cached per (client, method, url)"),
    "masking": (_masking, "redact.mask_value on header values (request id) replayed"),
    "no-send-hook": (_no_send_hook, "no _send_request hook (changes output: prices the per-attempt hook)"),
}
ABLATIONS["all-computation"] = (
    lambda: [ABLATIONS[n][0]() for n in ("mutated", "credential", "parse-error", "diagnosis", "start")],
    "mutated + credential + parse-error + diagnosis + start together: what is left is structure, not computation",
)


def apply(names: list[str]) -> None:
    for name in names:
        if name not in ABLATIONS:
            raise SystemExit(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
        ABLATIONS[name][0]()
