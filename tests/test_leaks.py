"""Never leak a key: run every scenario, collect every exported byte, and look for any piece of any key.

Documented bound: telemetry may show a key's type prefix (``sk-proj-``) and its last 4 characters (the
hint). This test asserts that no 8-character window of any key, other than windows inside its type
prefix, appears in any exported span, event, metric, log line or the CLI's output.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes.tools.otlp_json import OtlpJsonFileMetricExporter, OtlpJsonFileSpanExporter
from tests.support.keys import leaked_pieces, make_key


def test_leak_check_itself_detects_a_leak():
    key = make_key()
    assert leaked_pieces(key, "xx" + key[10:20] + "yy")
    assert not leaked_pieces(key, "sk-proj-..." + key[-4:])


def _scenarios(fake, keys):
    main, svc, short, odd, swapped = keys
    c = openai.OpenAI(api_key=main, base_url=fake.base_url, max_retries=1, organization="org-x", project="proj_y")
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    list(c.chat.completions.create(model="m", messages=[], stream=True, max_tokens=5))
    with c.beta.threads.runs.stream(thread_id="thread_1", assistant_id="asst_1") as s:
        s.until_done()
    fake.lose_scope(main, "api.threads.read", duration=60)
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list("thread_1")
    # A server (or proxy) that quotes the whole key back in its error message.
    fake.script("GET", "/models", 401, {"error": {"message": f"Key {main} lacks scope. Missing scopes: model.read."}})
    with pytest.raises(openai.AuthenticationError):
        c.models.list()
    fake.script("GET", "/files", 502, f"<html>upstream rejected Bearer {main}</html>", content_type="text/html")
    with pytest.raises(openai.APIStatusError):
        openai.OpenAI(api_key=main, base_url=fake.base_url, max_retries=0).files.list()
    fake.script("GET", "/batches", 429, {"error": {"message": "slow"}}, headers={"retry-after-ms": "1"})
    c.batches.list()
    c.copy(api_key=svc).models.list()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key=short, base_url=fake.base_url, max_retries=0).models.list()
    with pytest.raises(UnicodeEncodeError):  # httpx refuses a non-ASCII header value before sending
        openai.OpenAI(api_key=odd, base_url=fake.base_url, max_retries=0).models.list()
    c.api_key = swapped  # the corrupted-client case
    with pytest.raises(openai.AuthenticationError):
        c.beta.threads.runs.list("thread_1")

    async def run_async():
        ac = openai.AsyncOpenAI(api_key=svc, base_url=fake.base_url)
        await ac.chat.completions.create(model="m", messages=[])
        stream = await ac.chat.completions.create(model="m", messages=[], stream=True)
        async for _ in stream:
            pass
        await ac.close()

    asyncio.run(run_async())


def test_no_key_piece_in_any_exported_byte(fake, tmp_path, caplog):
    keys = [make_key(), make_key("sk-svcacct-"), "sk-shortkey123", "sk-" + "é中" * 12 + "x9Zq",
            make_key("sk-proj-", 96)]
    fake.grant(keys[0])
    fake.grant(keys[1])
    fake.grant(keys[4], scopes=["model.request"])
    out = tmp_path / "telemetry.jsonl"
    console = io.StringIO()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(out)))
    tp.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=console)))
    reader = InMemoryMetricReader()
    file_reader_exporter = OtlpJsonFileMetricExporter(out)
    mp = MeterProvider(metric_readers=[reader])
    caplog.set_level(logging.DEBUG, logger="otel_openai_scopes")
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp)
    try:
        _scenarios(fake, keys)
    finally:
        inst.uninstrument()
    metrics = reader.get_metrics_data()
    file_reader_exporter.export(metrics)
    tp.shutdown()
    exported = out.read_text(encoding="utf-8")
    ours = "\n".join(r.getMessage() + " " + repr(r.__dict__) for r in caplog.records
                     if r.name.startswith("otel_openai_scopes"))
    haystack = "\n".join([exported, console.getvalue(), metrics.to_json(), ours])
    assert exported.count('"name"') > 20 and "openai.key.fingerprint" in exported
    assert "diagnosis" in ours  # the diagnosis transition log lines were produced and scanned
    for key in keys:
        assert leaked_pieces(key, haystack) == [], f"piece of key {key[:3]}... leaked"
        assert key not in haystack


def test_cli_output_and_demo_never_show_the_key(tmp_path):
    key = make_key()
    env = {**os.environ, "OPENAI_API_KEY": key}
    out = subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "fingerprint"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0
    assert leaked_pieces(key, out.stdout + out.stderr) == []
