"""Server-sent event streams of the fake API, one function per protocol: chat completions, responses, and the
Assistants run events (``runs.stream``, ``runs.create(stream=True)``, ``threads.create_and_run``).

A request's ``max_tokens`` (or ``max_output_tokens``/``max_completion_tokens``) sets the number of deltas;
``metadata.fake_fail_after = N`` ends the stream with an ``error`` event in place of event N (mid-stream failures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .bodies import MODEL, Call, new_id, response_object

Event = tuple[Optional[str], Any]  # (event name or None, data)
MAX_DELTAS = 1000
_ERROR = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}


@dataclass(frozen=True)
class Stream:
    """The events of one streamed answer, how it ends, and where it fails (None: it does not)."""

    events: list[Event]
    terminator: bytes
    fail_at: int | None = None

    def frames(self) -> Iterator[bytes]:
        """The stream as SSE frames, ending with the terminator or, at ``fail_at``, an error event."""
        for i, (name, data) in enumerate(self.events):
            if self.fail_at is not None and i == self.fail_at:
                yield b"event: error\ndata: " + json.dumps(_ERROR).encode() + b"\n\n"
                return
            yield ((f"event: {name}\n" if name else "") + "data: " + json.dumps(data) + "\n\n").encode()
        yield self.terminator


def _deltas(payload: dict[str, Any]) -> int:
    n = payload.get("max_tokens") or payload.get("max_output_tokens") or payload.get("max_completion_tokens")
    return max(1, min(n if isinstance(n, int) else 3, MAX_DELTAS))


def _text(n: int) -> str:
    return "".join(f"t{i} " for i in range(n))


def chat_events(c: Call, n: int) -> list[Event]:
    cid = new_id("chatcmpl-")
    return [(None, {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL,
                    "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}]})
            for i in range(n)]


def responses_events(c: Call, n: int) -> list[Event]:
    created = response_object(c.payload, "in_progress")
    item = {"id": "msg_fake", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    where = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    events: list[Event] = [
        ("response.created", {"type": "response.created", "response": created, "sequence_number": 0}),
        ("response.output_item.added", {"type": "response.output_item.added", "item": item, "output_index": 0,
                                        "sequence_number": 1}),
        ("response.content_part.added", {"type": "response.content_part.added", **where, "sequence_number": 2,
                                         "part": {"type": "output_text", "text": "", "annotations": []}}),
    ]
    events += [("response.output_text.delta", {"type": "response.output_text.delta", "delta": f"t{i} ", **where,
                                               "sequence_number": i + 3, "logprobs": []}) for i in range(n)]
    text = _text(n)
    part = {"type": "output_text", "text": text, "annotations": []}
    done_item = dict(item, status="completed", content=[part])
    seq = n + 3
    events += [
        ("response.output_text.done", {"type": "response.output_text.done", "text": text, **where,
                                       "sequence_number": seq, "logprobs": []}),
        ("response.content_part.done", {"type": "response.content_part.done", "part": part, **where,
                                        "sequence_number": seq + 1}),
        ("response.output_item.done", {"type": "response.output_item.done", "item": done_item, "output_index": 0,
                                       "sequence_number": seq + 2}),
        ("response.completed", {"type": "response.completed", "sequence_number": seq + 3,
                                "response": dict(created, status="completed", output=[done_item])}),
    ]
    return events


def run_events(c: Call, n: int) -> list[Event]:
    thread_id = c.param("thread_id") or new_id("thread_")
    now = int(time.time())
    run = {"id": new_id("run_"), "object": "thread.run", "created_at": now, "thread_id": thread_id,
           "assistant_id": c.payload.get("assistant_id", "asst_fake"), "status": "queued", "model": MODEL,
           "instructions": "", "tools": [], "parallel_tool_calls": True}
    msg_id = new_id("msg_")
    message = {"id": msg_id, "object": "thread.message", "created_at": now, "thread_id": thread_id,
               "run_id": run["id"], "assistant_id": run["assistant_id"], "role": "assistant", "content": [],
               "attachments": [], "metadata": {}, "status": "in_progress"}
    events: list[Event] = [("thread.run.created", run),
                           ("thread.run.in_progress", dict(run, status="in_progress")),
                           ("thread.message.created", message)]
    events += [("thread.message.delta", {"id": msg_id, "object": "thread.message.delta", "delta": {
        "content": [{"index": 0, "type": "text", "text": {"value": f"t{i} "}}]}}) for i in range(n)]
    events += [("thread.message.completed", dict(message, status="completed", content=[
                   {"type": "text", "text": {"value": _text(n), "annotations": []}}])),
               ("thread.run.completed", dict(run, status="completed"))]
    return events


#: template -> (events, terminator); anything else streamed is an Assistants run.
_PROTOCOLS: dict[str, tuple[Callable[[Call, int], list[Event]], bytes]] = {
    "/chat/completions": (chat_events, b"data: [DONE]\n\n"),
    "/responses": (responses_events, b"event: done\ndata: [DONE]\n\n"),
}
_RUNS = (run_events, b"event: done\ndata: [DONE]\n\n")


def stream_for(c: Call) -> Stream:
    events, terminator = _PROTOCOLS.get(c.endpoint.template, _RUNS)
    metadata = c.payload.get("metadata")
    fail_at = metadata.get("fake_fail_after") if isinstance(metadata, dict) else None
    return Stream(events(c, _deltas(c.payload)), terminator, None if fail_at is None else int(fail_at))
