"""Resolve an endpoint: (client, method, URL) to the span name, attributes, scopes and metric template.

Pure: :func:`resolve_route` takes the client's :class:`~.client_view.ClientView`, the endpoint matcher, the
metric-template cap and the SDK helper the request names (:func:`~.endpoints.helper_of`: one of a closed set)
as arguments and returns a frozen :class:`Route`; the recorder memoises it per (client view, method, URL,
helper), bounded in entries and bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from . import attributes as A
from .client_view import ClientView
from .endpoints import Endpoint, operation_for
from .redact import mask_credentials

#: (method, path relative to the client's base) -> the endpoint.
Match = Callable[[str, str], Endpoint]
#: (template, known endpoint?) -> the template on metrics (itself, or the overflow value past its cap).
MetricTemplate = Callable[[str, bool], str]


@dataclass(frozen=True, eq=False)
class Route:
    """One (client, method, URL) resolved: what the span and metric records of such a call carry."""

    name: str  # span name: "GET /v1/threads/{thread_id}/runs"
    attrs: Mapping[str, Any]  # span attributes known at the start (the client's and the endpoint's)
    method: str
    template: str
    operation: str  # the endpoint's, or the helper's that sent it (``beta.threads.runs.stream``)
    scopes: tuple[str, ...]
    key: str  # "GET /threads/{thread_id}/runs": the diagnosis's endpoint key
    known: bool  # in the scope map
    metric_template: str
    size: int  # approximate bytes held, for the memo's byte bound
    helper: str = ""  # the SDK helper named by the request headers ("" for a plain call)


def relative_path(view: ClientView, url: str) -> str:
    """The URL's path with the client's base path cut off (a relative URL is returned as is)."""
    if not url.startswith(("http://", "https://")):
        return url
    path = urlsplit(url).path
    raw_base = view.raw_base_path
    if raw_base and path.startswith(raw_base + "/"):
        path = path[len(raw_base):]
    return path


def resolve_route(view: ClientView, method: str, url: str, match: Match, metric_template: MetricTemplate,
                  helper: str = "") -> Route:
    """``helper`` tells apart calls that share the endpoint (``runs.stream`` and ``runs.create``); the matcher
    has already told apart what the URL says (``?beta=true``)."""
    endpoint = match(method, relative_path(view, url))
    operation = operation_for(endpoint, helper) if helper else endpoint.operation
    template = view.base_path + endpoint.template
    attrs = dict(view.attrs)
    attrs[A.HTTP_METHOD] = method
    attrs[A.TEMPLATE] = template
    if operation:
        attrs[A.OPERATION] = operation
    if endpoint.scopes:
        attrs[A.SCOPE_REQUIRED] = endpoint.scopes
    name = f"{method} {template}"
    size = 1280 + 2 * (len(url) + len(name) + len(template))
    return Route(name, attrs, method, template, operation, endpoint.scopes, method + " " + endpoint.template,
                 endpoint.known, metric_template(template, endpoint.known), size, helper)


def mask_route(route: Route, secrets: tuple[str, ...], metric_template: MetricTemplate) -> Route | None:
    """The route with any piece of ``secrets`` in its template masked, or None when there is none (the
    usual case: a template is made of the scope map's words and placeholders)."""
    if not any(len(s) >= 8 for s in secrets):
        return None
    masked = mask_credentials(route.template, *secrets)
    if masked == route.template:
        return None
    attrs = dict(route.attrs)
    attrs[A.TEMPLATE] = masked
    return Route(f"{route.method} {masked}", attrs, route.method, masked, route.operation, route.scopes,
                 route.key, route.known, metric_template(masked, route.known), 0, route.helper)
