"""The probe table: one harmless request per scope family, and how to send it through the installed SDK.

A probe names only its request (method and path) and the SDK's older names for the call. What the request needs
(its scopes) and the SDK call that sends it come from the scope map, the one source the instrumentation's spans
use too, so the probe can never disagree with the ``openai.scope.required`` of its own span.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from ...endpoints import EndpointMatcher
from ...scope_map import build_matcher
from .verdicts import OK, Judgement, judge_failure

ABSENT_THREAD_ID = "thread_nonexistent_otel_doctor"
ABSENT_RESPONSE_ID = "resp_nonexistent_otel_doctor"
MODERATION_INPUT = "otel-openai-scopes doctor probe"


@dataclass(frozen=True)
class Probe:
    """One scope family and the one harmless request that tells whether the key has it."""

    family: str
    method: str
    path: str  # relative to the base URL, as sent
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()  # passed only when the installed SDK's method accepts them
    absent_id: bool = False  # reads an id that cannot exist: 404 means the scope is allowed
    opt_in: bool = False  # sent only with --model-request
    note: str = ""
    older_calls: tuple[str, ...] = ()  # the call's names in older SDKs, tried after the scope map's


PROBES: tuple[Probe, ...] = (
    Probe("models", "GET", "/models", note="list models"),
    Probe("assistants", "GET", "/assistants", kwargs=(("limit", 1),), note="list, limit=1"),
    Probe("threads", "GET", f"/threads/{ABSENT_THREAD_ID}", args=(ABSENT_THREAD_ID,), absent_id=True,
          note="no list endpoint: read a thread that does not exist"),
    Probe("responses", "GET", f"/responses/{ABSENT_RESPONSE_ID}", args=(ABSENT_RESPONSE_ID,), absent_id=True,
          note="read a response that does not exist"),
    Probe("files", "GET", "/files", kwargs=(("limit", 1),), note="list, limit=1 where the SDK has it"),
    Probe("batches", "GET", "/batches", kwargs=(("limit", 1),), note="list, limit=1"),
    Probe("vector_stores", "GET", "/vector_stores", kwargs=(("limit", 1),), older_calls=("beta.vector_stores.list",),
          note="list, limit=1 (scope string low confidence)"),
    Probe("fine_tuning", "GET", "/fine_tuning/jobs", kwargs=(("limit", 1),), note="list, limit=1"),
    Probe("model_request", "POST", "/moderations", kwargs=(("input", MODERATION_INPUT),), opt_in=True,
          note="opt-in (--model-request): one free moderation, stores nothing"),
)


@dataclass(frozen=True)
class Planned:
    """A probe with what the scope map says of its request."""

    probe: Probe
    scopes: tuple[str, ...]  # required, as on the probe's span
    template: str  # the endpoint template, relative to the base URL (``/threads/{thread_id}``)
    calls: tuple[str, ...]  # SDK attribute paths on the client, newest SDK first; the first present is used


@lru_cache(maxsize=1)
def _packaged() -> EndpointMatcher:
    return build_matcher()


def plan(probe: Probe, matcher: EndpointMatcher | None = None) -> Planned:
    """Scopes from ``matcher`` (the packaged map with the user's overrides, as the spans use); the SDK call from
    the packaged map (an override may give scopes without naming the SDK call)."""
    endpoint = (matcher or _packaged()).match(probe.method, probe.path)
    operation = endpoint.operation or _packaged().match(probe.method, probe.path).operation
    calls = tuple(c for c in (operation, *probe.older_calls) if c)
    return Planned(probe, endpoint.scopes, endpoint.template, calls)


def call_kwargs(fn: Callable[..., Any], wanted: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The keyword arguments among ``wanted`` that ``fn`` accepts (``limit`` is missing in some SDKs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(wanted)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted if k in params}


def resolve_call(client: Any, calls: Iterable[str]) -> tuple[str, Callable[..., Any]] | None:
    """The first of the SDK calls that the installed SDK has, or None (-> n/a)."""
    for dotted in calls:
        obj = client
        try:
            for part in dotted.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if callable(obj):
            return dotted, obj
    return None


def send(call: Callable[..., Any], probe: Probe, *secrets: str | None) -> Judgement:
    """Send one probe through the (instrumented) SDK and judge the answer; ``secrets`` are masked in errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # beta.threads is deprecated in 3.x
            call(*probe.args, **call_kwargs(call, probe.kwargs))
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash of the canary
        return judge_failure(exc, probe.absent_id, *secrets)
    return Judgement(OK, 200)
