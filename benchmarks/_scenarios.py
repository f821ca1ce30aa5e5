"""In-process mock OpenAI API and the benchmark scenarios.

The SDK is given an ``httpx2.Client``/``httpx2.AsyncClient`` whose transport is an
``httpx2.MockTransport``: the whole SDK path runs (options, request build, headers, send, response
parsing, error mapping, SSE decoding) but no socket is opened, so the numbers are CPU only.
Responses are prebuilt bytes (realistic bodies and headers); the handler only wraps them in a
fresh ``httpx2.Response``, the same work in every variant.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx2

ORG = "org-bench00000000000000000000"
PROJECT = "proj_bench000000000000000000000"
KEY_OK = "sk-proj-" + "A1b2C3d4E5f6G7h8" * 8 + "WXYZ"
KEY_RESTRICTED = "sk-proj-" + "Z9y8X7w6V5u4T3s2" * 8 + "RSTU"
THREAD_ID = "thread_abc123DEF456ghi789JKL012"

SCOPE_MESSAGE = (
    "You have insufficient permissions for this operation. Missing scopes: {scopes}. Check that you have the "
    "correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're "
    "using a restricted API key, that it has the necessary scopes."
)

_COMMON = [
    ("openai-organization", ORG),
    ("openai-project", PROJECT),
    ("openai-version", "2020-10-01"),
    ("openai-processing-ms", "212"),
    ("x-request-id", "req_0123456789abcdef0123456789abcdef"),
]

_CHAT_BODY = json.dumps({
    "id": "chatcmpl-BENCH0123456789abcdefghijkl",
    "object": "chat.completion",
    "created": 1764300000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None,
                    "annotations": []},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {
        "prompt_tokens": 19, "completion_tokens": 9, "total_tokens": 28,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_0123456789",
}).encode()


def _error_body(scopes: str) -> bytes:
    return json.dumps({"error": {"message": SCOPE_MESSAGE.format(scopes=scopes), "type": "invalid_request_error",
                                 "param": None, "code": None}}).encode()


_CHAT_401_BODY = _error_body("model.request")
_RUNS_401_BODY = _error_body("api.threads.read")


def _stream_body(chunks: int = 20) -> bytes:
    words = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?", " I", " am", " a", " benchmark",
             " stream", " with", " twenty", " chunks", ".", " Bye", "."]
    out = []
    base = {"id": "chatcmpl-BENCHSTREAM0123456789abcd", "object": "chat.completion.chunk", "created": 1764300000,
            "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_0123456789"}
    for i in range(chunks):
        if i == 0:
            delta: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
            finish = None
        elif i == chunks - 1:
            delta, finish = {}, "stop"
        else:
            delta, finish = {"content": words[(i - 1) % len(words)]}, None
        event = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        out.append(b"data: " + json.dumps(event).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


STREAM_CHUNKS = 20
_STREAM_BODY = _stream_body(STREAM_CHUNKS)

_JSON_HEADERS = [*_COMMON, ("content-type", "application/json"), ("x-ratelimit-limit-requests", "10000"),
                 ("x-ratelimit-remaining-requests", "9999")]
_ERROR_HEADERS = [*_COMMON, ("content-type", "application/json")]
_SSE_HEADERS = [*_COMMON, ("content-type", "text/event-stream; charset=utf-8")]


def handler(request: httpx2.Request) -> httpx2.Response:
    """The mock API: the same constant-cost dispatch for every variant."""
    path = request.url.path
    auth = request.headers.get("authorization", "")
    restricted = auth.endswith(KEY_RESTRICTED)
    if path.endswith("/chat/completions"):
        if restricted:
            return httpx2.Response(401, headers=_ERROR_HEADERS, content=_CHAT_401_BODY)
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(200, headers=_SSE_HEADERS, content=_STREAM_BODY)
        return httpx2.Response(200, headers=_JSON_HEADERS, content=_CHAT_BODY)
    if path.endswith("/runs"):
        return httpx2.Response(401, headers=_ERROR_HEADERS, content=_RUNS_401_BODY)
    return httpx2.Response(404, headers=_ERROR_HEADERS, content=b'{"error":{"message":"not found"}}')


BASE_URL = "https://api.openai.com/v1"
MESSAGES = [{"role": "user", "content": "Say hello"}]

# name -> description (the order is the table's order)
SCENARIOS = {
    "chat": "chat.completions.create, 200",
    "chat_401": "chat.completions.create, 401 Missing scopes: model.request (restricted key)",
    "runs_list_401": "beta.threads.runs.list, 401 Missing scopes: api.threads.read",
    "stream": "chat.completions.create(stream=True), 20 SSE chunks consumed",
    "async_chat": "AsyncOpenAI chat.completions.create, 200",
}


def make_clients() -> dict[str, Any]:
    """Clients built after instrumentation (so client-lifecycle hooks see them), one per key/kind."""
    import openai

    def sync(key: str) -> Any:
        return openai.OpenAI(api_key=key, organization=ORG, project=PROJECT, base_url=BASE_URL,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))

    def async_(key: str) -> Any:
        return openai.AsyncOpenAI(api_key=key, organization=ORG, project=PROJECT, base_url=BASE_URL,
                                  http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))

    return {"ok": sync(KEY_OK), "restricted": sync(KEY_RESTRICTED), "async": async_(KEY_OK)}


def make_runner(scenario: str, clients: dict[str, Any]) -> Callable[[int], None]:
    """``run(n)`` performs n calls of the scenario; exceptions the scenario expects are swallowed."""
    import openai

    if scenario == "chat":
        create = clients["ok"].chat.completions.create

        def run(n: int) -> None:
            for _ in range(n):
                create(model="gpt-4o-mini", messages=MESSAGES)
    elif scenario == "chat_401":
        create = clients["restricted"].chat.completions.create

        def run(n: int) -> None:
            for _ in range(n):
                try:
                    create(model="gpt-4o-mini", messages=MESSAGES)
                except openai.AuthenticationError:
                    pass
                else:
                    raise AssertionError("expected a 401")
    elif scenario == "runs_list_401":
        import warnings

        warnings.simplefilter("ignore", DeprecationWarning)
        runs = clients["ok"].beta.threads.runs

        def run(n: int) -> None:
            for _ in range(n):
                try:
                    runs.list(THREAD_ID)
                except openai.AuthenticationError:
                    pass
                else:
                    raise AssertionError("expected a 401")
    elif scenario == "stream":
        create = clients["ok"].chat.completions.create

        def run(n: int) -> None:
            for _ in range(n):
                count = 0
                for _chunk in create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                    count += 1
                if count != STREAM_CHUNKS:
                    raise AssertionError(f"expected {STREAM_CHUNKS} chunks, got {count}")
    elif scenario == "async_chat":
        import asyncio

        create_async = clients["async"].chat.completions.create
        loop = asyncio.new_event_loop()

        async def calls(n: int) -> None:
            for _ in range(n):
                await create_async(model="gpt-4o-mini", messages=MESSAGES)

        def run(n: int) -> None:
            loop.run_until_complete(calls(n))
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return run
