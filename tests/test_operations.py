"""``openai.operation`` tells apart calls that share an endpoint where the request does: the SDK's helpers send
``X-Stainless-*`` helper headers, and ``beta.responses`` puts ``?beta=true`` in the path. Real SDK, real HTTP to
the fake server, on both SDK ends; spans and metrics."""

from __future__ import annotations

import asyncio

import pytest
from sdk_compat import require, vector_stores

from otel_openai_scopes import attributes as A

THREAD = "thread_abc123"
MSG = [{"role": "user", "content": "hi"}]


def _operations(telemetry):
    return [s.attributes[A.OPERATION] for s in telemetry.spans()]


def test_runs_stream_is_not_runs_create(client, telemetry):
    with client.beta.threads.runs.stream(thread_id=THREAD, assistant_id="asst_1") as stream:
        stream.until_done()
    client.beta.threads.runs.create(thread_id=THREAD, assistant_id="asst_1")
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["POST /v1/threads/{thread_id}/runs"] * 2
    assert _operations(telemetry) == ["beta.threads.runs.stream", "beta.threads.runs.create"]
    # the same endpoint and scopes: only the name differs
    assert spans[0].attributes[A.SCOPE_REQUIRED] == spans[1].attributes[A.SCOPE_REQUIRED] == ("api.threads.write",)
    ops = {p.attributes.get(A.OPERATION) for p in telemetry.metric_points(A.METRIC_REQUESTS)}
    assert {"beta.threads.runs.stream", "beta.threads.runs.create"} <= ops


def test_async_runs_stream_and_create_and_run_stream(async_client, telemetry):
    async def go():
        async with async_client.beta.threads.runs.stream(thread_id=THREAD, assistant_id="asst_1") as stream:
            await stream.until_done()
        async with async_client.beta.threads.create_and_run_stream(assistant_id="asst_1") as stream:
            await stream.until_done()
        await async_client.close()

    asyncio.run(go())
    assert _operations(telemetry) == ["beta.threads.runs.stream", "beta.threads.create_and_run_stream"]


def test_submit_tool_outputs_stream(client, telemetry):
    runs = client.beta.threads.runs
    with runs.submit_tool_outputs_stream(run_id="run_abc", thread_id=THREAD, tool_outputs=[]) as stream:
        stream.until_done()
    runs.submit_tool_outputs(run_id="run_abc", thread_id=THREAD, tool_outputs=[])
    assert _operations(telemetry) == ["beta.threads.runs.submit_tool_outputs_stream",
                                      "beta.threads.runs.submit_tool_outputs"]


def test_create_and_poll_names_the_poll(client, telemetry):
    client.beta.threads.runs.create_and_poll(thread_id=THREAD, assistant_id="asst_1", poll_interval_ms=1)
    assert _operations(telemetry) == ["beta.threads.runs.create", "beta.threads.runs.poll"]
    assert telemetry.spans()[1].name == "GET /v1/threads/{thread_id}/runs/{run_id}"


def test_vector_store_file_poll(client, telemetry):
    files = vector_stores(client).files
    files.poll("file-abc", vector_store_id="vs_abc", poll_interval_ms=1)
    assert _operations(telemetry) == ["vector_stores.files.poll"]


def _chat_helpers(client):
    """(the resource whose parse/stream helpers this SDK has, its operation prefix): ``chat.completions`` on
    3.x, ``beta.chat.completions`` on the 1.4x-1.9x SDKs; none on 1.35.7."""
    for path in ("chat.completions", "beta.chat.completions"):
        resource = require(client, path) if path == "chat.completions" else _optional(client, path)
        if resource is not None and hasattr(resource, "parse"):
            return resource, path
    pytest.skip("no chat.completions.parse in this SDK")


def _optional(obj, dotted):
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def test_chat_parse_and_stream_helpers(client, telemetry):
    completions, path = _chat_helpers(client)
    completions.parse(model="m", messages=MSG)
    with completions.stream(model="m", messages=MSG) as stream:
        stream.until_done()
    client.chat.completions.create(model="m", messages=MSG)
    assert _operations(telemetry) == [path + ".parse", path + ".stream", "chat.completions.create"]
    assert {s.name for s in telemetry.spans()} == {"POST /v1/chat/completions"}


def test_azure_deployment_keeps_the_helper(fake, key, instrumentor, telemetry):
    """An Azure client inserts ``/deployments/{model}`` while building the request; the re-matched route keeps
    the helper's operation."""
    import openai

    azure = openai.AzureOpenAI(api_key=key, azure_endpoint=f"http://127.0.0.1:{fake.port}", api_version="2024-06-01")
    completions, path = _chat_helpers(azure)
    completions.parse(model="my-deployment", messages=MSG)
    span = telemetry.only_span()
    assert span.name == "POST /openai/deployments/{deployment_id}/chat/completions"
    assert span.attributes[A.OPERATION] == path + ".parse"
    azure.close()


def test_beta_responses_are_named_as_such(client, telemetry):
    beta_responses = require(client, "beta.responses")
    beta_responses.create(model="m", input="hi")
    client.responses.create(model="m", input="hi")
    spans = telemetry.spans()
    assert _operations(telemetry) == ["beta.responses.create", "responses.create"]
    assert spans[0].name == spans[1].name == "POST /v1/responses"
    assert spans[0].attributes[A.SCOPE_REQUIRED] == spans[1].attributes[A.SCOPE_REQUIRED] == \
        ("api.responses.write", "model.request")
    ops = {p.attributes.get(A.OPERATION) for p in telemetry.metric_points(A.METRIC_REQUESTS)}
    assert ops == {"beta.responses.create", "responses.create"}


def test_a_header_the_sdk_never_sends_names_nothing(client, instrumentor, telemetry):
    """Operations are metric attributes: only the helpers the SDK has relabel a call (a closed set), and header
    text the SDK never sends does not grow the route memo either."""
    values = ["my.helper", "x" * 300, "threads.runs.create_and_stream"] + [f"helper.{i}" for i in range(40)]
    for value in values:
        client.chat.completions.create(model="m", messages=MSG, extra_headers={"X-Stainless-Helper-Method": value,
                                                                               "X-Stainless-Stream-Helper": value})
    assert _operations(telemetry) == ["chat.completions.create"] * len(values)
    ops = {p.attributes.get(A.OPERATION) for p in telemetry.metric_points(A.METRIC_REQUESTS)}
    assert ops == {"chat.completions.create"}
    memo = [k for k in instrumentor.recorder.routes if k[2] == "/chat/completions"]
    # the plain call, and the one known helper value (of another endpoint: still chat.completions.create)
    assert len(memo) <= 2, memo
