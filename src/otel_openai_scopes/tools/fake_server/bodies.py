"""Response bodies of the fake API: realistic enough for the SDK's models to parse, nothing stored.

One table of per-endpoint bodies (chat, responses, search, file content), one of per-resource object fields,
and the generic cases: a list (paginated, :mod:`.pages`), a deletion, an object created or read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from ...endpoints import Endpoint
from .pages import page

#: Resources the API stores (a POST to their collection creates one), with their id prefixes.
_STORED = {
    "threads": "thread_", "runs": "run_", "messages": "msg_", "assistants": "asst_", "vector_stores": "vs_",
    "batches": "batch_", "files": "file-", "responses": "resp_", "steps": "step_", "file_batches": "vsfb_",
    "jobs": "ftjob-", "uploads": "upload_", "conversations": "conv_", "evals": "eval_", "containers": "cntr_",
}
_PREFIX = {
    **_STORED, "completions": "chatcmpl-", "items": "item_", "input_items": "msg_", "output_items": "outputitem_",
    "events": "ftevent-", "checkpoints": "ftckpt-", "permissions": "cp_", "videos": "video_", "skills": "skill_",
}
_OBJECT = {
    "threads": "thread", "runs": "thread.run", "messages": "thread.message", "assistants": "assistant",
    "vector_stores": "vector_store", "batches": "batch", "files": "file", "responses": "response",
    "models": "model", "steps": "thread.run.step", "events": "fine_tuning.job.event",
    "checkpoints": "fine_tuning.job.checkpoint", "jobs": "fine_tuning.job",
}
MODEL = "gpt-4o-mini"


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


@dataclass(frozen=True)
class Call:
    """What a body may depend on: the request and the endpoint it matched."""

    method: str
    endpoint: Endpoint
    segments: list[str]  # the path relative to the API base, split
    payload: Any  # the JSON body (a dict), or {}
    query: Mapping[str, str]
    now: int

    def param(self, name: str) -> str:
        """The path segment in the template's ``{name}`` place (``thread_id``), or ""."""
        for placeholder, segment in zip(self.endpoint.template.strip("/").split("/"), self.segments):
            if placeholder == "{" + name + "}":
                return segment
        return ""


# ---- per-resource object fields ------------------------------------------------------------------------
def _run(c: Call) -> dict[str, Any]:
    return {"thread_id": c.param("thread_id"), "assistant_id": "asst_fake", "status": "completed",
            "model": MODEL, "instructions": "", "tools": []}


def _message(c: Call) -> dict[str, Any]:
    return {"thread_id": c.param("thread_id"), "role": "user", "content": [], "attachments": [],
            "metadata": {}, "status": "completed"}


_FIELDS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "runs": _run,
    "messages": _message,
    "threads": lambda c: {"metadata": {}, "tool_resources": {}},
    "files": lambda c: {"bytes": 17, "filename": "fake.jsonl", "purpose": "batch", "status": "processed"},
    "batches": lambda c: {"endpoint": "/v1/chat/completions", "input_file_id": "file-fake",
                          "completion_window": "24h", "status": "validating"},
    "vector_stores": lambda c: {"name": "fake", "usage_bytes": 0, "status": "completed", "file_counts": {
        "in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}},
    "assistants": lambda c: {"model": MODEL, "tools": [], "name": "fake"},
}


def _object(resource: str, oid: str, c: Call) -> dict[str, Any]:
    if resource == "models":
        return {"id": oid, "object": "model", "created": c.now, "owned_by": "system"}
    obj: dict[str, Any] = {"id": oid, "object": _OBJECT.get(resource, resource), "created_at": c.now}
    fields = _FIELDS.get(resource)
    if fields is not None:
        obj.update(fields(c))
    return obj


# ---- per-endpoint bodies ---------------------------------------------------------------------------------
def response_object(payload: Any, status: str) -> dict[str, Any]:
    model = payload.get("model", MODEL) if isinstance(payload, dict) else MODEL
    return {"id": new_id("resp_"), "object": "response", "created_at": time.time(), "status": status,
            "model": model, "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output_text": ""}


def _chat(c: Call) -> dict[str, Any]:
    return {"id": new_id("chatcmpl-"), "object": "chat.completion", "created": c.now,
            "model": c.payload.get("model", MODEL),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello from the fake server."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}


def _search(c: Call) -> dict[str, Any]:
    return {"object": "vector_store.search_results.page", "search_query": [c.payload.get("query", "")],
            "data": [], "has_more": False, "next_page": None}


AZURE_DEPLOYMENT = "/deployments/{deployment_id}"
_ENDPOINT_BODIES: dict[tuple[str, str], Callable[[Call], Any]] = {
    ("POST", "/chat/completions"): _chat,
    ("POST", "/responses"): lambda c: response_object(c.payload, "completed"),
    ("POST", "/vector_stores/{vector_store_id}/search"): _search,
}


# ---- the generic cases ---------------------------------------------------------------------------------
def resource_of(template: str) -> str:
    """The resource an endpoint returns: its last literal path segment that names one (``runs`` for
    ``/threads/{thread_id}/runs/{run_id}/cancel``), else its last literal segment."""
    literals = [s for s in template.split("/") if s and not s.startswith("{")]
    known = [s for s in literals if s in _PREFIX or s in _OBJECT]
    return known[-1] if known else literals[-1] if literals else "object"


def is_list(method: str, endpoint: Endpoint) -> bool:
    """A list endpoint: the scope map names it ``....list``/``list_*``; outside the map, a GET of a collection."""
    if method != "GET":
        return False
    if endpoint.operation:
        return endpoint.operation.rsplit(".", 1)[-1].startswith("list")
    return not endpoint.template.endswith("}")


def _list(resource: str, c: Call, length: int) -> dict[str, Any]:
    prefix = _PREFIX.get(resource, "obj_")
    if resource == "models":  # the models list is not paginated by the SDK: the first is a real model name

        def make(oid: str, index: int) -> dict[str, Any]:
            return _object(resource, MODEL if index == 0 else oid, c)
    else:

        def make(oid: str, index: int) -> dict[str, Any]:
            return _object(resource, oid, c)

    return page(prefix, length, c.query, make)


def body_for(c: Call, list_length: int) -> tuple[Any, bool]:
    """The body answering ``c``, and whether it created an object (counted by the state)."""
    template = c.endpoint.template
    # Azure OpenAI's /deployments/{deployment_id}/chat/completions answers as /chat/completions does
    special = _ENDPOINT_BODIES.get((c.method, template.replace(AZURE_DEPLOYMENT, "", 1)))
    if special is not None:
        return special(c), False
    if template.endswith("/content"):
        return b"fake file content", False
    resource = resource_of(template)
    if is_list(c.method, c.endpoint):
        return _list(resource, c, list_length), False
    if c.method == "DELETE":
        return {"id": c.segments[-1] if c.segments else "", "object": _OBJECT.get(resource, resource) + ".deleted",
                "deleted": True}, False
    prefix = _PREFIX.get(resource)
    last = c.segments[-1] if c.segments else ""
    oid = last if prefix and last.startswith(prefix) else new_id(prefix or "obj_")
    # a POST to a collection of stored things creates one (moderations, embeddings...: nothing is stored)
    created = c.method == "POST" and resource in _STORED and template.rstrip("/").split("/")[-1] == resource
    return _object(resource, oid, c), created
