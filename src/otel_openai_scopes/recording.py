"""What a finished call records besides its span attributes: the diagnosis, metrics and span events.

Pure functions over the call's records (:class:`~.routes.Route`, :class:`~.sent_credential.SentCredential`,
:class:`~.outcomes.Outcome`); the instruments and the diagnosis are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from . import attributes as A
from . import limits as L
from .caches import Cap
from .config import Settings
from .diagnosis import Diagnosis, Verdict
from .outcomes import Outcome, masked_request_id
from .routes import Route
from .sent_credential import SentCredential

diagnosis_log = logging.getLogger("otel_openai_scopes.diagnosis")

#: (scope, verdict) per missing scope of a scope error.
Verdicts = list[tuple[str, Verdict]]
#: (start time ns, status, request id, error type) of an attempt that was retried.
Attempt = tuple[int, int, Any, str]


class MetricCaps:
    """The caps on metric attribute values, so a metric's series are bounded whatever the fleet sends."""

    __slots__ = ("contexts", "keys", "known_templates", "unknown_templates")

    def __init__(self, settings: Settings) -> None:
        self.keys = Cap(settings.max_metric_keys, A.FINGERPRINT_OVERFLOW)
        self.contexts = Cap(settings.max_metric_projects, A.CONTEXT_OVERFLOW)
        self.known_templates = Cap(L.MAX_KNOWN_TEMPLATES, A.TEMPLATE_OVERFLOW)
        self.unknown_templates = Cap(settings.max_metric_templates, A.TEMPLATE_OVERFLOW)

    def context(self, organization: str, project: str) -> tuple[str, str]:
        """(organization, project) as sent up to the cap on distinct pairs, then the overflow value for both."""
        if self.contexts.admit((organization, project)):
            return organization, project
        return A.CONTEXT_OVERFLOW, A.CONTEXT_OVERFLOW

    def template(self, template: str, known: bool) -> str:
        """Known endpoints keep their template (bounded by the scope map); other templates up to the cap."""
        return (self.known_templates if known else self.unknown_templates).value(template)


class Instruments(NamedTuple):
    requests: Any
    scope_errors: Any
    duration: Any


def create_instruments(meter: Any) -> Instruments:
    return Instruments(
        meter.create_counter(A.METRIC_REQUESTS, unit=A.METRIC_REQUESTS_UNIT,
                             description="OpenAI API calls (logical, retries included)"),
        meter.create_counter(A.METRIC_SCOPE_ERRORS, unit=A.METRIC_SCOPE_ERRORS_UNIT,
                             description="Missing scopes named by OpenAI error responses, one per scope"),
        meter.create_histogram(A.METRIC_DURATION, unit=A.METRIC_DURATION_UNIT,
                               description="Duration of OpenAI API calls"),
    )


def diagnose(diagnosis: Diagnosis, attrs: dict[str, Any], sent: SentCredential, host: str, route: Route,
             client_id: str, mutated: bool, status: int, out: Outcome | None) -> Verdicts:
    """Feed the outcome to the diagnosis; scope-error attributes onto ``attrs``; returns (scope, verdict)s.

    ``out`` is None when there was no exception and no HTTP error. A 404 counts as a success: the server
    went looking for the object, so the credential passed the scope check.
    """
    key_tuple = (sent.fingerprint, sent.organization, sent.project, host)
    error = out.error if out is not None else None
    if error is not None and error.code:
        attrs[A.ERROR_CODE] = error.code
    if error is not None and error.missing_scopes:
        attrs[A.SCOPE_MISSING] = error.missing_scopes
        attrs[A.SCOPE_ERROR] = True
        # A token whose own claims list its grant without the scope: certain from the first failure.
        verdicts = [(scope, diagnosis.observe_scope_error(key_tuple, scope, route.key, client_id, mutated,
                                                          sent.grants(scope) is False))
                    for scope in error.missing_scopes]
        attrs.update(verdicts[0][1].span_attributes(client_id))
        return verdicts
    if (out is None and 200 <= status < 400) or status == 404:
        diagnosis.observe_success(key_tuple, route.scopes, route.key, client_id)
    return []


def metric_attributes(route: Route, host: str, sent: SentCredential, status: int, error_type: str) -> dict[str, Any]:
    """The attributes of one call's metric records (all low-cardinality: capped where they could grow)."""
    attrs: dict[str, Any] = {
        A.HTTP_METHOD: route.method,
        A.TEMPLATE: route.metric_template,
        A.HOST: host,
    }
    attrs.update(sent.metric_attrs)
    if status:
        attrs[A.HTTP_STATUS] = status
    if error_type:
        attrs[A.ERROR] = error_type
    if route.operation:
        attrs[A.OPERATION] = route.operation
    return attrs


def scope_error_attributes(attrs: dict[str, Any], scope: str, label: str) -> dict[str, Any]:
    out = dict(attrs)
    out[A.SCOPE] = scope
    out[A.DIAGNOSIS] = label
    return out


def attempt_events(span: Any, attempts: Sequence[Attempt], secrets: tuple[str, ...]) -> None:
    """One ``openai.attempt`` event per HTTP attempt of a retried call."""
    for i, (ts, status, rid, err) in enumerate(attempts):
        ev: dict[str, Any] = {A.EVENT_ATTEMPT_RETRY: i}
        if status:
            ev[A.HTTP_STATUS] = status
        if rid:
            ev[A.REQUEST_ID] = masked_request_id(str(rid), secrets)
        if err and not status:
            ev[A.ERROR] = err
        span.add_event(A.EVENT_ATTEMPT, ev, timestamp=ts)


def diagnosis_changed(span: Any, sent: SentCredential, scope: str, verdict: Verdict, client_id: str,
                      evidence: str = "") -> None:
    """The ``openai.scope_error.diagnosis_changed`` event, also logged on ``otel_openai_scopes.diagnosis`` with
    the sentence that says what the verdict means for this scope and credential and what to do (``evidence``: more
    of it, a failing copy's parent say)."""
    attrs = {
        A.DIAGNOSIS: verdict.label,
        A.DIAGNOSIS_PREVIOUS: verdict.previous or "none",
        A.SCOPE: scope,
        A.KEY_FINGERPRINT: sent.fingerprint,
        A.CLIENT_ID: client_id,
    }
    span.add_event(A.EVENT_DIAGNOSIS_CHANGED, attrs)
    sentence = verdict.sentence(scope, sent.grants(scope), sent.secrets)
    diagnosis_log.info(
        "diagnosis for key %s scope %s: %s -> %s (client %s): %s%s",
        sent.fingerprint or "none", scope, verdict.previous or "none", verdict.label, client_id, sentence,
        f"; {evidence}" if evidence else "",
        extra={k.replace(".", "_"): v for k, v in attrs.items()},
    )
