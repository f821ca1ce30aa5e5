"""Load and concurrency: 16 threads x 2,000 calls and 2,000 concurrent asyncio tasks against the fake server
(in its own process, so the app's threads don't share a GIL with it: tests/support/fake_process.py), mixed
successes and scope errors.
Every call has exactly one span, metric sums equal call counts exactly, no exception escapes."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter

import openai
import pytest

from otel_openai_scopes import attributes as A
from tests.support.fake_process import control, fake_server_process
from tests.support.keys import make_key
from tests.support.sdk import http_module
from tests.support.telemetry import counting_pipeline, metric_sum

THREADS = int(os.environ.get("LOAD_THREADS", 16))
CALLS = int(os.environ.get("LOAD_CALLS", 2000))
TASKS = int(os.environ.get("LOAD_TASKS", 2000))
POOL = 64  # connections the asyncio tasks share (test_asyncio_tasks)


@pytest.fixture(scope="module")
def server():
    with fake_server_process() as base_url:
        yield base_url


@pytest.fixture
def setup(server):
    key = make_key()
    control(server, "reset", {})
    control(server, "grant", {"key": key})
    exporter, tp, reader, inst = counting_pipeline()
    yield server, key, exporter, tp, reader, inst
    inst.uninstrument()


def test_threads(setup):
    base_url, key, exporter, tp, reader, inst = setup
    # The SDK's own retries stay on: under a loaded machine a kept-alive connection can be closed by the server as
    # it is reused ("Connection error."), which the SDK retries; a 401 is never retried, and a retried call is
    # still one span and one metric increment, so the exact counts below hold either way.
    client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=2)
    client.beta.threads.runs.list("thread_0")  # the key had the scope: later failures are flapping
    control(base_url, "lose_scope", {"key": key, "scope": "api.threads.read", "probability": 0.3})
    tracer = tp.get_tracer("load-test")
    outcomes: Counter = Counter()
    escaped: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        local: Counter = Counter()
        try:
            for i in range(CALLS):
                with tracer.start_as_current_span("app.call"):
                    try:
                        if i % 2:
                            client.chat.completions.create(model="m", messages=[])
                        else:
                            client.beta.threads.runs.list(f"thread_{n}")
                        local["ok"] += 1
                    except openai.AuthenticationError:
                        local["401"] += 1
        except BaseException as exc:  # noqa: BLE001
            escaped.append(exc)
        with lock:
            outcomes.update(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not escaped
    calls = THREADS * CALLS
    assert sum(outcomes.values()) == calls and outcomes["401"] > calls * 0.05
    assert exporter.ours == calls + 1 and exporter.app == calls
    parents = [c for p, c in exporter.children_per_parent.items() if p]
    assert len(parents) == calls and set(parents) == {1}  # exactly one span per app call
    assert exporter.statuses[401] == outcomes["401"]
    assert metric_sum(reader, A.METRIC_REQUESTS) == calls + 1
    assert metric_sum(reader, A.METRIC_DURATION) == calls + 1
    assert metric_sum(reader, A.METRIC_SCOPE_ERRORS) == outcomes["401"]
    assert set(exporter.labels) == {A.DIAGNOSIS_SCOPE_FLAPPING}  # consistent under contention
    assert len(inst.recorder.diagnosis) <= inst.recorder.settings.diagnosis_max_entries


def test_asyncio_tasks(setup):
    base_url, key, exporter, tp, reader, _ = setup
    control(base_url, "lose_scope", {"key": key, "scope": "api.threads.read", "probability": 0.3})
    tracer = tp.get_tracer("load-test")

    async def main():
        # Every task is inside the SDK's call (and our wrapper) at once; what the machine's load must not decide is
        # whether a socket gets connected in time. The SDK's default pool opens up to 1,000 connections at once and
        # gives each 5 s to connect: at load 18 the fake server accepted them too slowly (APITimeoutError). Here the
        # tasks share POOL connections and wait for one as long as it takes (pool timeout none), so a slow machine
        # makes the test slower, never failing; connect and read keep generous finite timeouts so a hang still fails.
        httpx = http_module()
        timeout = httpx.Timeout(300.0, pool=None)
        http = openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL),
                                              timeout=timeout)
        client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout, http_client=http)
        sem = asyncio.Semaphore(TASKS)

        async def one(i: int) -> str:
            async with sem:
                with tracer.start_as_current_span("app.call"):
                    try:
                        if i % 2:
                            await client.chat.completions.create(model="m", messages=[])
                        else:
                            await client.beta.threads.runs.list(f"thread_{i}")
                        return "ok"
                    except openai.AuthenticationError:
                        return "401"

        results = await asyncio.gather(*(one(i) for i in range(TASKS)), return_exceptions=True)
        await client.close()
        return results

    results = asyncio.run(main())
    escaped = [r for r in results if isinstance(r, BaseException)]
    assert not escaped, escaped[:3]
    outcomes = Counter(results)
    assert exporter.ours == TASKS and exporter.app == TASKS
    assert set(c for p, c in exporter.children_per_parent.items() if p) == {1}
    assert len([p for p in exporter.children_per_parent if p]) == TASKS
    assert metric_sum(reader, A.METRIC_REQUESTS) == TASKS
    assert metric_sum(reader, A.METRIC_SCOPE_ERRORS) == outcomes["401"] > 0
