"""Alternative recorder steps used by ``hotspots.py`` to price parts of the per-call path.

Each ablation replaces one step (through the public seam, ``OpenAIScopesInstrumentor(steps=...)``, see
``otel_openai_scopes.steps``) with a replay of the value it computed before (after a few real calls, so
the diagnosis is in its steady state): the span, events and metrics keep the same shape and values, and
``ours - ours+ablation`` under callgrind is what that step costs per call (an upper bound on what any fix
of it can save). ``no-send-hook`` is the exception: it removes the per-attempt hook and so changes the
output (no request headers as sent); it prices the hook itself.

The replays are keyed on what identifies a call in the benchmark (one client, one credential and one
response per scenario), not on everything the real step reads: they are only valid there. Nothing under
src/ is patched.
"""

from __future__ import annotations

from dataclasses import replace
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


def _mutated(steps: Any) -> dict:
    return {"mutated_fields": _replay(steps.mutated_fields,
                                      lambda info, client, sent_fp, fingerprint_of: (id(client), sent_fp))}


def _credential(steps: Any) -> dict:
    """Reading the credential headers as sent (each distinct set is described once anyway)."""
    return {"read_sent": _replay(steps.read_sent, lambda request: type(request))}


def _parse_error(steps: Any) -> dict:
    """The outcome of a failed call: memo key, error body parse and masking, span status."""
    return {"outcome": _replay(steps.outcome, lambda status, exc, *rest: (status, type(exc)))}


def _response(steps: Any) -> dict:
    """Status and response headers (request id, organization, project) read and masked."""
    real = steps.response_attributes
    seen: dict = {}

    def response_attributes(attrs, response, secrets, values):
        k = (type(response), getattr(response, "status_code", 0))
        entry = seen.get(k)
        if entry is not None and entry[0] >= REAL_CALLS:
            attrs.update(entry[1])
            return entry[2]
        before = dict(attrs)
        status = real(attrs, response, secrets, values)
        added = {name: value for name, value in attrs.items() if before.get(name) != value}
        seen[k] = ((entry[0] if entry else 0) + 1, added, status)
        return status

    return {"response_attributes": response_attributes}


def _diagnosis(steps: Any) -> dict:
    real_new = steps.new_diagnosis

    def new_diagnosis(settings):
        diagnosis = real_new(settings)
        real_success = diagnosis.observe_success
        counts: dict = {}

        def observe_success(cred, scopes, endpoint, client_id):
            k = (cred, endpoint)
            n = counts.get(k, 0)
            if n < REAL_CALLS:
                counts[k] = n + 1
                real_success(cred, scopes, endpoint, client_id)

        diagnosis.observe_success = observe_success
        diagnosis.observe_scope_error = _replay(
            diagnosis.observe_scope_error, lambda cred, scope, endpoint, *_rest: (cred, scope, endpoint))
        return diagnosis

    return {"new_diagnosis": new_diagnosis}


def _no_send_hook(steps: Any) -> dict:
    return {"attempt_hook": False}


ABLATIONS: dict[str, tuple[Callable[[Any], dict], str]] = {
    "mutated": (_mutated, "steps.mutated_fields replayed (client fields vs construction)"),
    "credential": (_credential, "steps.read_sent replayed (credential headers as sent; descriptions are memoised)"),
    "parse-error": (_parse_error, "steps.outcome replayed (error-body memo key, parse, masking, span status)"),
    "response": (_response, "steps.response_attributes replayed (status, request id, response org/project)"),
    "diagnosis": (_diagnosis, "Diagnosis.observe_success/observe_scope_error replayed"),
    "no-send-hook": (_no_send_hook, "no per-attempt hook (changes output: prices the hook)"),
}
_COMPUTATION = ("mutated", "credential", "parse-error", "response", "diagnosis")
ABLATIONS["all-computation"] = (
    lambda steps: {k: v for n in _COMPUTATION for k, v in ABLATIONS[n][0](steps).items()},
    " + ".join(_COMPUTATION) + " together: what is left is structure, not computation",
)


def steps_for(names: list[str]) -> Any:
    """The default steps with the named ablations applied: pass as ``instrument(steps=...)``."""
    from otel_openai_scopes.steps import DEFAULT_STEPS

    changes: dict = {}
    for name in names:
        if name not in ABLATIONS:
            raise SystemExit(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
        changes.update(ABLATIONS[name][0](DEFAULT_STEPS))
    return replace(DEFAULT_STEPS, **changes)
