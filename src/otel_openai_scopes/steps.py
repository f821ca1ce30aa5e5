"""The recorder's steps, as one replaceable set of functions.

Each step is a pure function of its own module; :class:`Steps` names them so that a caller can pass
alternatives in (``OpenAIScopesInstrumentor(steps=dataclasses.replace(DEFAULT_STEPS, ...))``): the
benchmarks price a step by replaying its earlier results (``benchmarks/_ablations.py``) and the fault
tests make one fail, without reaching into the recorder. Applications have no reason to pass any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .client_view import ClientView, view_client
from .clients import ClientInfo, KeyFingerprint, mutated_fields
from .config import Settings
from .diagnosis import Diagnosis
from .outcomes import Outcome, outcome, response_attributes
from .recording import Verdicts, diagnose, metric_attributes
from .routes import Match, MetricTemplate, Route, resolve_route
from .scope_errors import ErrorInfo, parse_error
from .sent_credential import Describers, SentCredential, SentHeaders, describe_sent, read_sent


def new_diagnosis(settings: Settings) -> Diagnosis:
    return Diagnosis(settings.diagnosis_window, settings.diagnosis_max_entries)


@dataclass(frozen=True)
class Steps:
    #: Resolve the client: the span attributes and base path of every call it makes.
    view_client: Callable[[ClientInfo, Any, str], ClientView] = view_client
    #: Resolve the endpoint (and the SDK helper that calls it): span name, template, operation, scopes, metric
    #: template.
    resolve_route: Callable[[ClientView, str, str, Match, MetricTemplate, str], Route] = resolve_route
    #: The credential headers of an attempt, as sent.
    read_sent: Callable[[Any], SentHeaders] = read_sent
    #: ... described once: fingerprint, kind, hint, secrets, organization, project, attributes.
    describe_sent: Callable[[SentHeaders, Describers], SentCredential] = describe_sent
    #: What of the client changed since construction.
    mutated_fields: Callable[[ClientInfo, Any, str | None, KeyFingerprint], list[str]] = mutated_fields
    #: Status and response headers onto the span attributes.
    response_attributes: Callable[..., int] = response_attributes
    #: Error type, parsed error body and span status of a call that did not simply succeed.
    outcome: Callable[..., Outcome] = outcome
    #: An error body to its missing scopes and masked message.
    parse_error: Callable[..., ErrorInfo] = parse_error
    #: The outcome fed to the diagnosis; scope-error attributes.
    diagnose: Callable[..., Verdicts] = diagnose
    #: The metric records' attributes.
    metric_attributes: Callable[..., dict[str, Any]] = metric_attributes
    new_diagnosis: Callable[[Settings], Diagnosis] = new_diagnosis
    #: The per-attempt hook (the headers as sent). Off only to price it: spans then lose what it reads.
    attempt_hook: bool = True


DEFAULT_STEPS = Steps()
