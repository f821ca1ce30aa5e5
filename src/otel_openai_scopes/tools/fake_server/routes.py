"""One request to the fake API -> one reply, in the order the real API decides: control API, scripted answers,
credential (401 ``invalid_api_key``), scopes (401 ``Missing scopes``), unknown object or URL (404), then the body
or the stream. No sockets here: :mod:`.server` turns requests into :class:`Request` and replies into bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ...fingerprint import credential_from_authorization
from . import control
from .bodies import Call, body_for
from .identity import TOKEN_PATH, Principal
from .sse import Stream, stream_for
from .state import FakeState, KeyGrant

SCOPE_MESSAGE = (
    "You have insufficient permissions for this operation. Missing scopes: {scopes}. Check that you have the "
    "correct role in your organization (Reader, Writer, Owner) and project (Viewer, Member, Owner), and if you're "
    "using a restricted API key, that it has the necessary scopes."
)
#: Path prefixes before the API's own paths: OpenAI's ``/v1`` and Azure OpenAI's ``/openai``.
_API_BASES = ("/v1/", "/openai/")


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.target.split("?", 1)[1])) if "?" in self.target else {}

    def credential(self) -> str:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return credential_from_authorization(auth) or ""
        return self.headers.get("api-key", "")

    def json(self) -> Any:
        if not self.body or not self.headers.get("content-type", "").startswith("application/json"):
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            return {}


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, bytes, str, a Stream, or None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def base_headers(grant: KeyGrant | None) -> dict[str, str]:
    h = {"x-request-id": "req_" + uuid.uuid4().hex, "openai-version": "2020-10-01", "openai-processing-ms": "12"}
    if grant is not None:
        h["openai-organization"] = grant.organization
        h["openai-project"] = grant.project
    return h


def error(status: int, message: str, code: str | None, grant: KeyGrant | None,
          etype: str = "invalid_request_error") -> Reply:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return Reply(status, body, base_headers(grant))


def _masked(key: str) -> str:
    """How the API quotes a wrong key: its first 8 and last 4 characters."""
    return (key[:8] + "*" * max(0, len(key) - 12) + key[-4:]) if len(key) > 12 else "***"


def _relative(path: str, gateway: bool) -> str:
    for base in _API_BASES:
        if path.startswith(base):
            return path[len(base) - 1:]
    at = path.find(_API_BASES[0]) if gateway else -1
    return path[at + len(_API_BASES[0]) - 1:] if at >= 0 else path


def _nonexistent(segments: list[str]) -> bool:
    return any(s.startswith("nonexistent") or "_nonexistent" in s or "-nonexistent" in s for s in segments)


def handle(fake: FakeState, req: Request) -> Reply:
    if req.path.startswith(control.PREFIX):
        status, answer = control.handle(fake, req.path, req.body)
        return Reply(status, answer)
    if req.path == TOKEN_PATH and req.method == "POST":
        status, answer = fake.exchange(req.body)
        return Reply(status, answer, {"cache-control": "no-store"})
    rel = _relative(req.path, fake.gateway_paths)
    fake.note_request(req.method, req.target, req.body, dict(req.headers))
    endpoint = fake.matcher.match(req.method, rel)
    template = endpoint.template
    key = req.credential()
    grant = fake.grant_for(Principal.of(key))

    scripted = fake.take_script(req.method, req.path)
    if scripted is not None:
        fake.record(req.method, template, key, scripted.status)
        return Reply(scripted.status, scripted.body, {**base_headers(grant), **scripted.headers},
                     scripted.content_type)
    if grant is None:
        fake.record(req.method, template, key, 401)
        return error(401, f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                     "https://platform.openai.com/account/api-keys.", "invalid_api_key", None)
    missing = fake.missing_scopes(key, grant, endpoint)
    project = req.headers.get("openai-project", "")
    missing += [s for s in fake.denied_in(key, grant, project, endpoint) if s not in missing]
    if missing:
        fake.record(req.method, template, key, 401)
        code = "missing_scope" if fake.error_code_style == "2026" else None
        return error(401, SCOPE_MESSAGE.format(scopes=", ".join(missing)), code, grant)
    segments = [s for s in rel.split("/") if s]
    if _nonexistent(segments):
        fake.record(req.method, template, key, 404)
        return error(404, f"No such object: '{segments[-1]}'", None, grant)
    if not endpoint.known:
        fake.record(req.method, template, key, 404)
        return error(404, f"Invalid URL ({req.method} {req.path})", None, grant)

    payload = req.json()
    call = Call(req.method, endpoint, segments, payload if isinstance(payload, dict) else {}, req.query,
                int(time.time()))
    fake.record(req.method, template, key, 200)
    headers = {**base_headers(grant), "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999"}
    if call.payload.get("stream"):
        return Reply(200, stream_for(call), headers, "text/event-stream")
    body, created = body_for(call, fake.list_length)
    if created:
        fake.note_created()
    return Reply(200, body, headers)


__all__ = ["SCOPE_MESSAGE", "Reply", "Request", "Stream", "handle"]
