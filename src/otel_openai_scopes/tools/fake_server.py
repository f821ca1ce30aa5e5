"""A fake OpenAI API on 127.0.0.1 for tests, demos and the scope probe.

Realistic JSON bodies and headers (``x-request-id``, ``openai-organization``, ``openai-project``),
SSE streams (chat, responses, Assistants run events), per-key scope grants enforced with the
package's own scope map, scheduled windows in which a key loses a scope (so an app can be replayed
through an incident), and scripted responses (429s, 403s, HTML and empty bodies) for fault tests.
It never needs the network and never sees a real key.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..endpoints import Endpoint
from ..fingerprint import credential_from_authorization, fingerprint
from ..scope_map import build_matcher

ALL = "*"
SCOPE_MESSAGE = (
    "You have insufficient permissions for this operation. Missing scopes: {scopes}. Check that you have the "
    "correct role in your organization (Reader, Writer, Owner) and project (Viewer, Member, Owner), and if you're "
    "using a restricted API key, that it has the necessary scopes."
)


@dataclass
class KeyGrant:
    """What one fake key may do. ``scopes`` of ``{"*"}`` means every scope ("All" permissions)."""

    scopes: set[str] = field(default_factory=lambda: {ALL})
    organization: str = "org-fake000000000000000000"
    project: str = "proj_fake0000000000000000000"

    def allows(self, scope: str) -> bool:
        return ALL in self.scopes or scope in self.scopes


@dataclass
class ScopeWindow:
    """Between ``start`` and ``end`` (epoch seconds) ``key`` (or every key for ``"*"``) loses ``scope``
    on a fraction ``probability`` of its requests."""

    key: str
    scope: str
    start: float
    end: float
    probability: float = 1.0


@dataclass
class Scripted:
    """The next ``times`` requests matching ``method`` and ``path`` (regex on the path) get this answer."""

    method: str
    path: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    content_type: str = "application/json"


_ANY_KEY = KeyGrant()


def _rid() -> str:
    return "req_" + uuid.uuid4().hex


def _obj_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


_PREFIX = {
    "threads": "thread_", "runs": "run_", "messages": "msg_", "assistants": "asst_", "vector_stores": "vs_",
    "batches": "batch_", "files": "file-", "responses": "resp_", "steps": "step_", "file_batches": "vsfb_",
    "jobs": "ftjob-", "uploads": "upload_", "conversations": "conv_", "evals": "eval_", "containers": "cntr_",
}
_OBJECT = {
    "threads": "thread", "runs": "thread.run", "messages": "thread.message", "assistants": "assistant",
    "vector_stores": "vector_store", "batches": "batch", "files": "file", "responses": "response",
    "models": "model", "steps": "thread.run.step",
}


class FakeOpenAI:
    """The server's state and behaviour. ``with FakeOpenAI() as fake: fake.base_url`` starts it on loopback."""

    def __init__(self, keys: dict[str, KeyGrant] | None = None, seed: int = 1234, error_code_style: str = "2024",
                 port: int = 0) -> None:
        self.keys: dict[str, KeyGrant] = dict(keys or {})
        #: Grant every scope to keys it does not know (load and memory tests with thousands of keys).
        self.accept_any_key = False
        self.windows: list[ScopeWindow] = []
        self.scripts: list[Scripted] = []
        self.matcher = build_matcher()
        self.error_code_style = error_code_style
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stats: Counter[tuple[str, str, str, int]] = Counter()
        self.created = 0
        self.last_request: dict[str, Any] = {}
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    # -- configuration ---------------------------------------------------------------------------
    def grant(self, key: str, scopes: Iterable[str] = (ALL,), organization: str | None = None,
              project: str | None = None) -> KeyGrant:
        grant = KeyGrant(set(scopes))
        if organization:
            grant.organization = organization
        if project:
            grant.project = project
        self.keys[key] = grant
        return grant

    def lose_scope(self, key: str, scope: str, start: float | None = None, duration: float = 3600.0,
                   probability: float = 1.0) -> ScopeWindow:
        start = time.time() if start is None else start
        window = ScopeWindow(key, scope, start, start + duration, probability)
        with self._lock:
            self.windows.append(window)
        return window

    def script(self, method: str, path: str, status: int, body: Any = None, times: int = 1,
               headers: dict[str, str] | None = None, content_type: str = "application/json") -> None:
        with self._lock:
            self.scripts.append(Scripted(method.upper(), path, status, body, headers or {}, times, content_type))

    def reset(self) -> None:
        with self._lock:
            self.windows.clear()
            self.scripts.clear()
            self.stats.clear()
            self.created = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = _QuietServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- decisions -------------------------------------------------------------------------------
    def _scripted(self, method: str, path: str) -> Scripted | None:
        with self._lock:
            for s in self.scripts:
                if s.method in (method, ALL) and re.search(s.path, path):
                    s.times -= 1
                    if s.times <= 0:
                        self.scripts.remove(s)
                    return s
        return None

    def missing_scopes(self, key: str, grant: KeyGrant, endpoint: Endpoint, now: float | None = None) -> list[str]:
        """Scopes ``endpoint`` needs that ``grant`` (``key``'s) lacks now, scope-loss windows included."""
        now = time.time() if now is None else now
        missing = [s for s in endpoint.scopes if not grant.allows(s)]
        with self._lock:
            for w in self.windows:
                if w.key in (key, ALL) and w.start <= now < w.end and w.scope in endpoint.scopes \
                        and w.scope not in missing and self._rng.random() < w.probability:
                    missing.append(w.scope)
        return missing

    def record(self, method: str, template: str, key: str, status: int) -> None:
        fp = fingerprint(key) if key else ""  # hashed outside the lock every handler thread shares
        with self._lock:
            self.stats[(method, template, fp, status)] += 1

    @property
    def requests_seen(self) -> int:
        """API requests served since the last reset (every one is recorded once)."""
        return self.count()

    def count(self, status: int | None = None, template: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, t, k, s), n in self.stats.items()
                       if (status is None or s == status) and (template is None or t == template))


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-connection (closed streams, killed tests) are normal here, not errors."""

    request_queue_size = 4096  # thousands of concurrent asyncio tasks connect at once in the load tests

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK stall each
    # response by ~40 ms on loopback.
    disable_nagle_algorithm = True
    server_state: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr logging
        pass

    # every method goes through one handler
    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data or content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _base_headers(self, grant: KeyGrant | None) -> dict[str, str]:
        h = {"x-request-id": _rid(), "openai-version": "2020-10-01", "openai-processing-ms": "12"}
        if grant is not None:
            h["openai-organization"] = grant.organization
            h["openai-project"] = grant.project
        return h

    def _error(self, status: int, message: str, etype: str, code: str | None, grant: KeyGrant | None,
               extra: dict[str, str] | None = None) -> None:
        headers = self._base_headers(grant)
        headers.update(extra or {})
        self._send(status, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers)

    def _handle(self) -> None:
        fake = self.server_state
        method = self.command
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if path.startswith("/__fake__/"):
            return self._control(path, body)
        if path.startswith("/v1/"):
            rel = path[3:]
        elif path.startswith("/openai/"):  # Azure OpenAI layout
            rel = path[7:]
        else:
            rel = path
        with fake._lock:
            fake.last_request = {"method": method, "path": self.path, "body": body,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        endpoint = fake.matcher.match(method, rel)
        auth = self.headers.get("Authorization", "")
        key = (credential_from_authorization(auth) or "") if auth.lower().startswith("bearer ") \
            else self.headers.get("api-key", "")
        grant = fake.keys.get(key)
        if grant is None and fake.accept_any_key and key:
            grant = _ANY_KEY

        scripted = fake._scripted(method, path)
        if scripted is not None:
            fake.record(method, endpoint.template, key, scripted.status)
            headers = self._base_headers(grant)
            headers.update(scripted.headers)
            return self._send(scripted.status, scripted.body, headers, scripted.content_type)

        if grant is None:
            fake.record(method, endpoint.template, key, 401)
            masked = (key[:8] + "*" * max(0, len(key) - 12) + key[-4:]) if len(key) > 12 else "***"
            return self._error(401, f"Incorrect API key provided: {masked}. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                               "invalid_api_key", None)
        missing = fake.missing_scopes(key, grant, endpoint)
        if missing:
            fake.record(method, endpoint.template, key, 401)
            code = "missing_scope" if fake.error_code_style == "2026" else None
            return self._error(401, SCOPE_MESSAGE.format(scopes=", ".join(missing)), "invalid_request_error",
                               code, grant)
        segments = [s for s in rel.split("/") if s]
        if any(s.startswith("nonexistent") or "_nonexistent" in s or "-nonexistent" in s for s in segments):
            fake.record(method, endpoint.template, key, 404)
            return self._error(404, f"No such object: '{segments[-1]}'", "invalid_request_error", None, grant)
        if not endpoint.known:
            fake.record(method, endpoint.template, key, 404)
            return self._error(404, f"Invalid URL ({method} {path})", "invalid_request_error", None, grant)

        try:
            payload = json.loads(body) if body and self.headers.get("Content-Type", "").startswith(
                "application/json") else {}
        except ValueError:
            payload = {}
        fake.record(method, endpoint.template, key, 200)
        headers = self._base_headers(grant)
        headers.update({"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999"})
        if isinstance(payload, dict) and payload.get("stream"):
            return self._stream(endpoint, segments, payload, headers)
        return self._send(200, self._body_for(method, endpoint, segments, payload, body), headers)

    # -- bodies ----------------------------------------------------------------------------------
    def _body_for(self, method: str, endpoint: Endpoint, segments: list[str], payload: Any, raw: bytes) -> Any:
        fake = self.server_state
        t = endpoint.template
        now = int(time.time())
        if t == "/chat/completions" and method == "POST":
            return {"id": _obj_id("chatcmpl-"), "object": "chat.completion", "created": now,
                    "model": payload.get("model", "gpt-4o-mini"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "Hello from the fake server."}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
        if t == "/responses" and method == "POST":
            return self._response_object(payload, "completed")
        if t.endswith("/search"):
            return {"object": "vector_store.search_results.page", "search_query": [payload.get("query", "")],
                    "data": [], "has_more": False, "next_page": None}
        if t == "/files/{file_id}/content":
            return b"fake file content"
        resource = next((s for s in reversed([x for x in t.split("/") if x and not x.startswith("{")])
                         if s in _OBJECT or s in _PREFIX), segments[0] if segments else "object")
        collection = not t.endswith("}") and resource == t.rstrip("/").split("/")[-1]
        if method == "GET" and collection:
            item = self._object(resource, segments, payload, now)
            return {"object": "list", "data": [item], "first_id": item["id"], "last_id": item["id"],
                    "has_more": False}
        if method == "DELETE":
            return {"id": segments[-1], "object": _OBJECT.get(resource, resource) + ".deleted", "deleted": True}
        stored = resource in _OBJECT or resource in _PREFIX  # moderations, embeddings...: nothing is stored
        if stored and method == "POST" and collection:
            with fake._lock:
                fake.created += 1
        return self._object(resource, segments, payload, now)

    def _object(self, resource: str, segments: list[str], payload: Any, now: int) -> dict[str, Any]:
        oid = segments[-1] if segments and segments[-1].startswith(_PREFIX.get(resource, "\0")) else \
            _obj_id(_PREFIX.get(resource, "obj_"))
        obj: dict[str, Any] = {"id": oid, "object": _OBJECT.get(resource, resource), "created_at": now}
        if resource == "models":
            obj = {"id": "gpt-4o-mini", "object": "model", "created": now, "owned_by": "system"}
        elif resource == "runs":
            obj.update({"thread_id": segments[1] if len(segments) > 1 else "", "assistant_id": "asst_fake",
                        "status": "completed", "model": "gpt-4o-mini", "instructions": "", "tools": []})
        elif resource == "messages":
            obj.update({"thread_id": segments[1] if len(segments) > 1 else "", "role": "user", "content": [],
                        "attachments": [], "metadata": {}, "status": "completed"})
        elif resource == "threads":
            obj.update({"metadata": {}, "tool_resources": {}})
        elif resource == "files":
            obj.update({"bytes": 17, "filename": "fake.jsonl", "purpose": "batch", "created_at": now,
                        "status": "processed"})
        elif resource == "batches":
            obj.update({"endpoint": "/v1/chat/completions", "input_file_id": "file-fake", "completion_window": "24h",
                        "status": "validating", "created_at": now})
        elif resource == "vector_stores":
            obj.update({"name": "fake", "usage_bytes": 0, "status": "completed",
                        "file_counts": {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}})
        elif resource == "assistants":
            obj.update({"model": "gpt-4o-mini", "tools": [], "name": "fake"})
        return obj

    def _response_object(self, payload: Any, status: str) -> dict[str, Any]:
        return {"id": _obj_id("resp_"), "object": "response", "created_at": time.time(), "status": status,
                "model": payload.get("model", "gpt-4o-mini"), "output": [], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [], "output_text": ""}

    # -- streams ---------------------------------------------------------------------------------
    def _stream(self, endpoint: Endpoint, segments: list[str], payload: dict[str, Any],
                headers: dict[str, str]) -> None:
        chunks = payload.get("max_tokens") or payload.get("max_output_tokens") or payload.get("max_completion_tokens")
        n = max(1, min(int(chunks) if isinstance(chunks, int) else 3, 1000))
        metadata = payload.get("metadata")
        fail_at = metadata.get("fake_fail_after") if isinstance(metadata, dict) else None
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        t = endpoint.template
        events: list[tuple[str | None, Any]] = []
        if t == "/chat/completions":
            cid = _obj_id("chatcmpl-")
            for i in range(n):
                events.append((None, {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                                      "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": f"t{i} "},
                                                                           "finish_reason": None}]}))
        elif t == "/responses":
            created = self._response_object(payload, "in_progress")
            events.append(("response.created", {"type": "response.created", "response": created,
                                                "sequence_number": 0}))
            item = {"id": "msg_fake", "type": "message", "role": "assistant", "status": "in_progress",
                    "content": []}
            events.append(("response.output_item.added", {"type": "response.output_item.added", "item": item,
                                                          "output_index": 0, "sequence_number": 1}))
            events.append(("response.content_part.added", {
                "type": "response.content_part.added", "item_id": "msg_fake", "output_index": 0,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []},
                "sequence_number": 2}))
            for i in range(n):
                events.append(("response.output_text.delta", {"type": "response.output_text.delta", "delta": f"t{i} ",
                                                              "item_id": "msg_fake", "output_index": 0,
                                                              "content_index": 0, "sequence_number": i + 3,
                                                              "logprobs": []}))
            text = "".join(f"t{i} " for i in range(n))
            part = {"type": "output_text", "text": text, "annotations": []}
            seq = n + 3
            events.append(("response.output_text.done", {"type": "response.output_text.done", "text": text,
                                                         "item_id": "msg_fake", "output_index": 0,
                                                         "content_index": 0, "sequence_number": seq,
                                                         "logprobs": []}))
            events.append(("response.content_part.done", {"type": "response.content_part.done", "part": part,
                                                           "item_id": "msg_fake", "output_index": 0,
                                                           "content_index": 0, "sequence_number": seq + 1}))
            done_item = dict(item, status="completed", content=[part])
            events.append(("response.output_item.done", {"type": "response.output_item.done", "item": done_item,
                                                         "output_index": 0, "sequence_number": seq + 2}))
            done = dict(created, status="completed", output=[done_item])
            events.append(("response.completed", {"type": "response.completed", "response": done,
                                                  "sequence_number": seq + 3}))
        else:  # Assistants runs
            thread_id = segments[1] if len(segments) > 1 and segments[0] == "threads" else _obj_id("thread_")
            run = {"id": _obj_id("run_"), "object": "thread.run", "created_at": int(time.time()),
                   "thread_id": thread_id, "assistant_id": payload.get("assistant_id", "asst_fake"),
                   "status": "queued", "model": "gpt-4o-mini", "instructions": "", "tools": [],
                   "parallel_tool_calls": True}
            events.append(("thread.run.created", run))
            events.append(("thread.run.in_progress", dict(run, status="in_progress")))
            msg_id = _obj_id("msg_")
            message = {"id": msg_id, "object": "thread.message", "created_at": int(time.time()),
                       "thread_id": thread_id, "run_id": run["id"], "assistant_id": run["assistant_id"],
                       "role": "assistant", "content": [], "attachments": [], "metadata": {},
                       "status": "in_progress"}
            events.append(("thread.message.created", message))
            for i in range(n):
                events.append(("thread.message.delta", {"id": msg_id, "object": "thread.message.delta",
                                                        "delta": {"content": [{"index": 0, "type": "text",
                                                                               "text": {"value": f"t{i} "}}]}}))
            events.append(("thread.message.completed", dict(message, status="completed", content=[
                {"type": "text", "text": {"value": "".join(f"t{i} " for i in range(n)), "annotations": []}}])))
            events.append(("thread.run.completed", dict(run, status="completed")))
        for i, (name, data) in enumerate(events):
            if fail_at is not None and i == int(fail_at):
                self._chunk(b"event: error\ndata: " + json.dumps(
                    {"error": {"message": "The server had an error while processing your request.",
                               "type": "server_error"}}).encode() + b"\n\n")
                break
            frame = (f"event: {name}\n" if name else "") + "data: " + json.dumps(data) + "\n\n"
            self._chunk(frame.encode())
        else:
            self._chunk(b"data: [DONE]\n\n" if t == "/chat/completions" else b"event: done\ndata: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    # -- control ---------------------------------------------------------------------------------
    def _control(self, path: str, body: bytes) -> None:
        fake = self.server_state
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return self._control_action(fake, path, data)
        except (ValueError, KeyError, TypeError) as exc:  # a bad control request: say so, no traceback
            missing = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            return self._send(400, {"error": f"bad control request for {path}: {missing}"})

    def _control_action(self, fake: FakeOpenAI, path: str, data: dict[str, Any]) -> None:
        if path == "/__fake__/grant":
            fake.grant(data["key"], data.get("scopes", [ALL]), data.get("organization"), data.get("project"))
        elif path == "/__fake__/lose_scope":
            fake.lose_scope(str(data["key"]), str(data["scope"]), data.get("start"),
                            float(data.get("duration", 3600.0)), float(data.get("probability", 1.0)))
        elif path == "/__fake__/reset":
            fake.reset()
        elif path == "/__fake__/accept_any_key":
            fake.accept_any_key = bool(data.get("enabled", True))
        elif path != "/__fake__/stats":
            return self._send(404, {"error": "unknown control path"})
        return self._send(200, {"requests": fake.requests_seen, "created": fake.created,
                                "by_status": {str(s): fake.count(status=s) for s in (200, 401, 403, 404, 429)}})
