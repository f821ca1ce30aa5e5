"""Bounded memory: 100,000 client objects created, used once and dropped, with 10,000 distinct keys.
The package's registries and caches stay within their documented bounds and RSS growth stays under budget."""

from __future__ import annotations

import gc
import os

import openai
import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes.caches import BoundedCache
from tests.support.fake_process import control, fake_server_process
from tests.support.keys import make_key
from tests.support.telemetry import counting_pipeline, metric_points, metric_sum

CLIENTS = int(os.environ.get("MEMORY_CLIENTS", 100_000))
KEYS = int(os.environ.get("MEMORY_KEYS", 10_000))
RSS_BUDGET_MB = 40


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture(scope="module")
def server():
    with fake_server_process() as base_url:
        yield base_url


def test_many_clients_and_keys_stay_bounded(server):
    control(server, "reset", {})
    control(server, "accept_any_key", {"enabled": True})
    exporter, _, reader, inst = counting_pipeline(max_clients=1000, max_metric_keys=100,
                                                   diagnosis_max_entries=512)
    rec = inst.recorder
    http = openai.DefaultHttpxClient()  # one connection pool, as an app that builds a client per request would
    keys = [make_key() for _ in range(KEYS)]
    per_key = max(1, CLIENTS // KEYS)
    peak_registry = 0
    try:
        def use(i: int) -> None:
            c = openai.OpenAI(api_key=keys[(i // per_key) % KEYS], base_url=server, http_client=http,
                              max_retries=0)
            c.models.list()

        for i in range(2000):  # warm-up: caches, allocator arenas, connection pool
            use(i)
        gc.collect()
        before = rss_mb()
        for i in range(2000, CLIENTS):
            use(i)
            if i % 997 == 0:
                peak_registry = max(peak_registry, len(rec.registry))
        gc.collect()
        after = rss_mb()
    finally:
        inst.uninstrument()
        http.close()
        control(server, "accept_any_key", {"enabled": False})
    assert exporter.ours == CLIENTS
    assert metric_sum(reader, A.METRIC_REQUESTS) == CLIENTS
    assert peak_registry <= 1000 and len(rec.registry) <= 5  # weak entries went with their clients
    assert rec.credentials.describe.cache_info().currsize <= 1024
    assert rec.matcher.match.cache_info().currsize <= 4096
    assert len(rec.diagnosis) <= 512
    assert len(rec.caps.keys) <= 100
    memos = {name: c for name, c in vars(rec).items() if isinstance(c, BoundedCache)}
    assert {"routes", "sent", "values", "errors", "recordings"} <= set(memos)
    for name, memo in memos.items():
        assert len(memo) <= memo.max_entries and memo.bytes <= memo.max_bytes, name
    series = {p.attributes[A.KEY_FINGERPRINT] for p in metric_points(reader, A.METRIC_REQUESTS)}
    assert len(series) == 101 and A.FINGERPRINT_OVERFLOW in series  # 100 keys, then the overflow value
    growth = after - before
    print(f"RSS {before:.1f} MB -> {after:.1f} MB (+{growth:.1f} MB) over {CLIENTS - 2000} clients, {KEYS} keys")
    assert growth < RSS_BUDGET_MB
