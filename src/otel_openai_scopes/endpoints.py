"""URL path to endpoint: template, SDK operation and required scopes.

Pure functions over a precompiled segment trie, so the hot path is a few dict lookups per path
segment. IDs are never put on metrics: every concrete path is turned into its template first, and
paths the scope map does not know are still templated by a generic ID detector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Protocol

_ID_PREFIX = re.compile(
    r"^(?:thread|run|step|msg|asst|vs|vsfb|batch|ftjob|ft|ftckpt|resp|conv|item|fc|rs|cntr|cfile|eval|evalrun|"
    r"outputitem|upload|part|video|call|org|proj|user|key|chatcmpl|file|modr|cmpl|cp|sess|ws|invite|group|role)[-_]",
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEXISH = re.compile(r"^[0-9a-fA-F]{16,}$")
# What a literal path segment of an API looks like: lowercase words joined by "_", at most one "-" or "."
# (``fine_tuning``, ``chat-completions``), or a version (``v1``, ``v2beta``, ``v1alpha1``). Anything else in
# an unknown path (numbers, emails, slugs, mixed case, digits, ``<prefix>_<hex>``, tokens) is an identifier.
_LITERAL = re.compile(r"[a-z][a-z_]*(?:[.\-][a-z_]+)?|v[0-9]{1,3}(?:[a-z]+[0-9]*)?")
_PREFIX_HEX = re.compile(r"^[a-z]+[_\-][0-9a-f]{6,}$")
MAX_LITERAL_CHARS = 32
#: Letters-only segments this long with no separator are tokens, not words.
MAX_WORD_CHARS = 20
MAX_PATH_CHARS = 2048
MAX_SEGMENTS = 32
#: Placeholder for a base-path segment that looks like a credential or an identifier.
BASE_PLACEHOLDER = "{token}"
#: A scope map row's scopes when no source names them (the endpoint then carries no required scope).
UNKNOWN_SCOPES = "unknown"

#: Request headers the SDK's helpers add, the helper's name (or "true") as value, read in this order.
HELPER_HEADERS = ("X-Stainless-Helper-Method", "X-Stainless-Stream-Helper", "X-Stainless-Poll-Helper")
#: What :func:`helper_of` returns for the poll helper (its header says only "true").
POLL = "poll"
#: Helper name -> (the operation of the endpoint it calls, the operation it is). Only these names relabel a call:
#: a header value never becomes an operation by itself (operations are metric attributes, so a closed set).
#: ``runs.stream`` and its deprecated alias ``runs.create_and_stream`` send the same name: both are ``runs.stream``.
HELPER_OPERATIONS = {
    "chat.completions.parse": ("chat.completions.create", "chat.completions.parse"),
    "chat.completions.stream": ("chat.completions.create", "chat.completions.stream"),
    "beta.chat.completions.parse": ("chat.completions.create", "beta.chat.completions.parse"),
    "beta.chat.completions.stream": ("chat.completions.create", "beta.chat.completions.stream"),
    "threads.runs.create_and_stream": ("beta.threads.runs.create", "beta.threads.runs.stream"),
    "threads.runs.submit_tool_outputs_stream": ("beta.threads.runs.submit_tool_outputs",
                                                "beta.threads.runs.submit_tool_outputs_stream"),
    "threads.create_and_run_stream": ("beta.threads.create_and_run", "beta.threads.create_and_run_stream"),
}
#: The query parameter some 3.x resources put in the path string (``"/responses?beta=true"``): ``beta.responses``.
BETA_QUERY = "beta=true"


@dataclass(frozen=True)
class Endpoint:
    """What the package knows of one endpoint. ``template`` is relative to the API base (``/threads/{thread_id}``)."""

    method: str
    template: str
    operation: str = ""
    scopes: tuple[str, ...] = ()
    confidence: str = ""
    known: bool = True


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    param_name: str = ""
    endpoint: Endpoint | None = None


def looks_like_id(segment: str) -> bool:
    """Whether a path segment of an unknown endpoint is an identifier (replaced by a placeholder)."""
    if not segment:
        return False
    if _ID_PREFIX.match(segment) or _UUID.match(segment) or _HEXISH.match(segment) or _PREFIX_HEX.match(segment):
        return True
    if len(segment) > MAX_LITERAL_CHARS or _LITERAL.fullmatch(segment) is None:
        return True
    return len(segment) >= MAX_WORD_CHARS and segment.isalpha()


def sanitize_base_path(path: str) -> str:
    """A client's base path (``/gw/<token>/v1``) for templates: identifier- or credential-like segments become
    ``{token}`` (a gateway may put a key in the path), and the Azure deployment becomes ``{deployment_id}``."""
    out: list[str] = []
    previous = ""
    for seg in split_path(path):
        if previous == "deployments":
            out.append("{deployment_id}")
        elif looks_like_id(seg):
            out.append(BASE_PLACEHOLDER)
        else:
            out.append(seg)
        previous = seg
    return "/" + "/".join(out) if out else ""


def helper_of(headers: Any) -> str:
    """The SDK helper a request's headers name (``threads.runs.create_and_stream``, :data:`POLL`), or "".

    Only a name of :data:`HELPER_OPERATIONS` (or :data:`POLL`) is returned, never other header text: the
    result keys the recorder's route memo, so it is one of a closed set of values.
    """
    if not headers:  # None, or the SDK's NotGiven/Omit sentinels
        return ""
    try:
        for name in HELPER_HEADERS:
            value = headers.get(name)
            if isinstance(value, str) and value:
                if name == HELPER_HEADERS[2]:
                    return POLL
                if value in HELPER_OPERATIONS:
                    return value
    except Exception:  # noqa: BLE001 - an odd header container names no helper
        return ""
    return ""


class Named(Protocol):
    """Anything that carries an endpoint's operation (an :class:`Endpoint`, the recorder's cached endpoint)."""

    @property
    def operation(self) -> str: ...


def operation_for(endpoint: Named, helper: str = "", query: str = "") -> str:
    """The SDK operation of one call: the endpoint's, told apart where the request says more.

    ``helper`` (from :func:`helper_of`): a stream or parse helper of the endpoint's operation
    (``beta.threads.runs.create`` sent by ``runs.stream`` is ``beta.threads.runs.stream``), or :data:`POLL` on a
    ``*.retrieve`` (``*.poll``). ``query``: ``beta=true`` makes ``responses.create`` ``beta.responses.create``.
    Anything else leaves the endpoint's operation as it is.
    """
    operation = endpoint.operation
    if not operation:
        return operation
    if helper == POLL:
        if operation.endswith(".retrieve"):
            operation = operation[: -len("retrieve")] + "poll"
    elif helper:
        entry = HELPER_OPERATIONS.get(helper)
        if entry is not None and entry[0] == operation:
            operation = entry[1]
    if query and BETA_QUERY in query.split("&") and not operation.startswith("beta."):
        operation = "beta." + operation
    return operation


def _param_name_after(previous: str) -> str:
    base = previous[:-1] if previous.endswith("s") and len(previous) > 1 else previous
    base = re.sub(r"[^a-z0-9_]", "_", base.lower()) or "id"
    return "{" + base + "_id}" if base != "id" else "{id}"


_NAMED_PREFIX = re.compile(r"^([a-z]{2,12})[-_]")


def _param_name_for(segment: str, previous: str) -> str:
    """``widget_8f3a...`` -> ``{widget_id}``; otherwise named after the segment before it."""
    m = _NAMED_PREFIX.match(segment)
    if m:
        return "{" + m.group(1) + "_id}"
    return _param_name_after(previous) if previous else "{id}"


def generic_template(segments: Iterable[str]) -> str:
    out: list[str] = []
    previous = ""
    for seg in segments:
        if looks_like_id(seg):
            out.append(_param_name_for(seg, previous))
        else:
            out.append(seg)
        previous = seg
    return "/" + "/".join(out)


def split_path(path: str) -> list[str]:
    """Path to segments: query and fragment dropped, empty segments removed, bounded in length."""
    if len(path) > MAX_PATH_CHARS:
        path = path[:MAX_PATH_CHARS]
    for sep in ("?", "#"):
        i = path.find(sep)
        if i >= 0:
            path = path[:i]
    return [s for s in path.split("/") if s][:MAX_SEGMENTS]


class EndpointMatcher:
    """Matches (method, path relative to the API base) to an :class:`Endpoint`.

    Literal segments win over placeholders (``/threads/runs`` is not ``/threads/{thread_id}``);
    the search backtracks when a literal branch dead-ends.
    """

    def __init__(self, endpoints: Iterable[Endpoint], api_prefix: str = "/v1") -> None:
        self._roots: dict[str, _Node] = {}
        self._api_prefix = api_prefix
        for ep in endpoints:
            self._add(ep)
        self.match = lru_cache(maxsize=4096)(self._match_uncached)
        self.match_uncached = self._match_uncached

    def _add(self, ep: Endpoint) -> None:
        node = self._roots.setdefault(ep.method.upper(), _Node())
        for seg in split_path(ep.template):
            if seg.startswith("{") and seg.endswith("}"):
                if node.param is None:
                    node.param = _Node()
                    node.param_name = seg
                node = node.param
            else:
                node = node.literal.setdefault(seg, _Node())
        if node.endpoint is None or ep.confidence == "user":
            node.endpoint = ep  # first entry wins, except a user's override

    def _walk(self, node: _Node, segs: list[str], i: int, out: list[str]) -> Endpoint | None:
        if i == len(segs):
            return node.endpoint
        seg = segs[i]
        child = node.literal.get(seg)
        if child is not None:
            out.append(seg)
            found = self._walk(child, segs, i + 1, out)
            if found is not None:
                return found
            out.pop()
        if node.param is not None:
            out.append(node.param_name)
            found = self._walk(node.param, segs, i + 1, out)
            if found is not None:
                return found
            out.pop()
        return None

    def _match_uncached(self, method: str, path: str) -> Endpoint:
        method = method.upper()
        segs = split_path(path)
        if segs and "/" + segs[0] == self._api_prefix:
            segs = segs[1:]
        prefix = ""
        # Azure OpenAI: /deployments/{deployment_id}/chat/completions
        if len(segs) > 2 and segs[0] == "deployments":
            prefix = "/deployments/{deployment_id}"
            segs = segs[2:]
        root = self._roots.get(method)
        if root is not None:
            out: list[str] = []
            ep = self._walk(root, segs, 0, out)
            if ep is not None:
                query = path.partition("?")[2]
                if query:
                    operation = operation_for(ep, query=query)
                    if operation != ep.operation:
                        ep = replace(ep, operation=operation)
                if prefix:
                    return Endpoint(method, prefix + ep.template, ep.operation, ep.scopes, ep.confidence, True)
                return ep
        return Endpoint(method, prefix + generic_template(segs) if segs else prefix or "/", known=False)


def endpoints_from_rows(rows: Iterable[Mapping[str, Any]], api_prefix: str = "/v1") -> list[Endpoint]:
    """Rows with method, template, operation, scopes (comma separated, or ``unknown``), confidence -> endpoints.

    Templates are stored relative to the API base, so a ``/v1`` prefix is removed.
    """
    out = []
    for row in rows:
        template = row["template"].strip()
        if template.startswith(api_prefix + "/"):
            template = template[len(api_prefix):]
        scopes = row.get("scopes") or ""
        if not isinstance(scopes, str):
            scopes = ",".join(scopes)
        out.append(
            Endpoint(
                method=row["method"].strip().upper(),
                template=template,
                operation=(row.get("operation") or "").strip(),
                scopes=tuple(s.strip() for s in scopes.split(",") if s.strip() and s.strip() != UNKNOWN_SCOPES),
                confidence=(row.get("confidence") or "").strip(),
            )
        )
    return out
