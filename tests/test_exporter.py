"""The ``openai_scopes_file`` trace exporter: registered for ``opentelemetry-instrument``, whole lines from
many processes sharing one path, and what it writes is what ``report`` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from conftest import make_key
from test_end_to_end import APP, _console_spans, _Receiver
from test_leaks import leaked_pieces

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools.otlp_file import PATH_ENV, OpenAIScopesFileSpanExporter
from otel_openai_scopes.tools.otlp_json import read_spans
from otel_openai_scopes.tools.report import analyze_files

BIN = Path(sys.executable).parent


def test_registered_in_the_opentelemetry_traces_exporter_group():
    from importlib.metadata import entry_points

    eps = entry_points()
    group = eps.select(group="opentelemetry_traces_exporter") if hasattr(eps, "select") \
        else eps.get("opentelemetry_traces_exporter", [])
    found = {e.value for e in group if e.name == "openai_scopes_file"}  # an editable install may list it twice
    assert found == {"otel_openai_scopes.tools.otlp_file:OpenAIScopesFileSpanExporter"}
    (ep,) = [e for e in group if e.name == "openai_scopes_file"][:1]
    assert ep.load() is OpenAIScopesFileSpanExporter


def test_path_from_the_environment_and_a_bad_path_never_raises(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(PATH_ENV, str(tmp_path / "sub" / "spans.jsonl"))
    assert OpenAIScopesFileSpanExporter().path == tmp_path / "sub" / "spans.jsonl"
    monkeypatch.delenv(PATH_ENV)
    assert OpenAIScopesFileSpanExporter().path == Path("otel-openai-scopes.jsonl")

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    exporter = OpenAIScopesFileSpanExporter(blocked)
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    for _ in range(3):
        tp.get_tracer("t").start_span("x").end()
    with tp.get_tracer("t").start_as_current_span("y") as span:
        pass
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert sum("cannot write" in r.getMessage() for r in caplog.records) == 1  # logged once, never raised


WRITER = textwrap.dedent("""
    import sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from otel_openai_scopes.tools.otlp_file import OpenAIScopesFileSpanExporter

    name, batches, per_batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    exporter = OpenAIScopesFileSpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.instance.id": name}))
    tracer = tp.get_tracer("writer")
    big = "x" * 2000  # lines of 100s of KB: far beyond PIPE_BUF, so only the lock keeps them whole
    for b in range(batches):
        spans = []
        for i in range(per_batch):
            with tracer.start_as_current_span(f"{name}-{b}-{i}", attributes={"pad": big, "n": i}) as s:
                pass
            spans.append(s)
        exporter.export(spans)
""")


def test_processes_sharing_one_path_never_interleave_lines(tmp_path):
    path = tmp_path / "shared.jsonl"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, PATH_ENV: str(path)}
    writers, batches, per_batch = 6, 15, 60
    procs = [subprocess.Popen([sys.executable, str(script), f"w{k}", str(batches), str(per_batch)], env=env)
             for k in range(writers)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    docs = [json.loads(line) for line in lines[:-1]]  # every line is one whole export
    assert len(docs) == writers * batches
    names = [sp["name"] for d in docs for rs in d["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]
    assert len(names) == len(set(names)) == writers * batches * per_batch
    assert min(len(line) for line in lines[:-1]) > 100_000


def test_opentelemetry_instrument_writes_the_file_beside_otlp_and_report_reads_it(fake, tmp_path):
    """The README's recipe, through real processes: an app under opentelemetry-instrument with
    --traces_exporter otlp,openai_scopes_file sends its spans over OTLP and appends them to the file."""
    key = make_key()
    fake.grant(key, scopes=["model.request", "api.model.request"])
    (tmp_path / "app.py").write_text(APP)
    receiver = _Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    out = tmp_path / "spans" / "app.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": key, "FAKE_BASE_URL": fake.base_url, "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "sample-app", PATH_ENV: str(out),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    try:
        for exporters in ("otlp,openai_scopes_file", "console,openai_scopes_file"):
            proc = subprocess.run([str(BIN / "opentelemetry-instrument"), "--traces_exporter", exporters,
                                   sys.executable, str(tmp_path / "app.py")], capture_output=True, text=True,
                                  env=env, timeout=120, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "got 401" in proc.stdout
            if exporters.startswith("console"):
                assert len([s for s in _console_spans(proc.stdout) if s["attributes"].get(A.OPERATION)]) == 2
    finally:
        receiver.shutdown()
    assert {s["name"] for s in receiver.spans} >= {"POST /v1/chat/completions", "GET /v1/threads/{thread_id}/runs"}
    spans = [s for s in read_spans([out]) if A.OPERATION in s.attributes]
    assert len(spans) == 4  # two runs, two calls each
    assert all(s.resource["service.name"] == "sample-app" for s in spans)
    analysis = analyze_files([out])
    assert analysis.scope_errors == 2 and len(analysis.processes) == 2
    (w,) = analysis.windows
    assert w.scopes == ("api.threads.read",) and w.errors == 2
    assert leaked_pieces(key, out.read_text()) == []
