"""The ``openai_scopes_file`` trace exporter: registered for ``opentelemetry-instrument`` from the runtime
package, whole lines from many processes sharing one path, what it writes is what ``report`` reads, files it
creates are private and a link at its path is refused, and one span it cannot encode never costs another."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from otel_openai_scopes import attributes as A
from otel_openai_scopes.exporter import FILE_MODE, PATH_ENV, OpenAIScopesFileSpanExporter
from otel_openai_scopes.tools.otlp_json import read_spans
from otel_openai_scopes.tools.report import analyze_files
from tests.support.apps import APP, BIN, console_spans
from tests.support.keys import leaked_pieces, make_key
from tests.support.otlp import raw_spans
from tests.support.receiver import OtlpReceiver


def test_registered_in_the_opentelemetry_traces_exporter_group():
    from importlib.metadata import entry_points

    eps = entry_points()
    group = eps.select(group="opentelemetry_traces_exporter") if hasattr(eps, "select") \
        else eps.get("opentelemetry_traces_exporter", [])
    found = {e.value for e in group if e.name == "openai_scopes_file"}  # an editable install may list it twice
    assert found == {"otel_openai_scopes.exporter:OpenAIScopesFileSpanExporter"}
    (ep,) = [e for e in group if e.name == "openai_scopes_file"][:1]
    assert ep.load() is OpenAIScopesFileSpanExporter
    from otel_openai_scopes.tools import otlp_file  # the old import path stays importable

    assert otlp_file.OpenAIScopesFileSpanExporter is OpenAIScopesFileSpanExporter


def test_the_exporter_loads_nothing_from_tools():
    """``opentelemetry-instrument`` loads it into apps: the runtime never imports ``tools/`` (nor the CLI's
    dependencies)."""
    code = ("import sys; import otel_openai_scopes.exporter, otel_openai_scopes; "
            "print(sorted(m for m in sys.modules if m.startswith('otel_openai_scopes.tools') "
            "or m.split('.')[0] in ('rich', 'typer', 'click', 'msgspec')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


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
    from otel_openai_scopes.exporter import OpenAIScopesFileSpanExporter

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
    names = [sp["name"] for sp in raw_spans(docs)]
    assert len(names) == len(set(names)) == writers * batches * per_batch
    assert min(len(line) for line in lines[:-1]) > 100_000


def test_opentelemetry_instrument_writes_the_file_beside_otlp_and_report_reads_it(fake, tmp_path):
    """The README's recipe, through real processes: an app under opentelemetry-instrument with
    --traces_exporter otlp,openai_scopes_file sends its spans over OTLP and appends them to the file."""
    key = make_key()
    fake.grant(key, scopes=["model.request", "api.model.request"])
    (tmp_path / "app.py").write_text(APP)
    out = tmp_path / "spans" / "app.jsonl"
    with OtlpReceiver() as receiver:
        env = {**os.environ, "OPENAI_API_KEY": key, "FAKE_BASE_URL": fake.base_url, "OTEL_METRICS_EXPORTER": "none",
               "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "sample-app", PATH_ENV: str(out),
               "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        for exporters in ("otlp,openai_scopes_file", "console,openai_scopes_file"):
            proc = subprocess.run([str(BIN / "opentelemetry-instrument"), "--traces_exporter", exporters,
                                   sys.executable, str(tmp_path / "app.py")], capture_output=True, text=True,
                                  env=env, timeout=120, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "got 401" in proc.stdout
            if exporters.startswith("console"):
                assert len([s for s in console_spans(proc.stdout) if s["attributes"].get(A.OPERATION)]) == 2
    assert {s.name for s in receiver.spans} >= {"POST /v1/chat/completions", "GET /v1/threads/{thread_id}/runs"}
    spans = [s for s in read_spans([out]) if A.OPERATION in s.attributes]
    assert len(spans) == 4  # two runs, two calls each
    assert all(s.resource["service.name"] == "sample-app" for s in spans)
    analysis = analyze_files([out])
    assert analysis.scope_errors == 2 and len(analysis.processes) == 2
    (w,) = analysis.windows
    assert w.scopes == ("api.threads.read",) and w.errors == 2
    assert leaked_pieces(key, out.read_text()) == []


# ---- the file: private when created, never through a link (issue 16, item 9) ------------------------
def _one_span(name: str = "s"):
    from opentelemetry.sdk.trace import TracerProvider

    with TracerProvider().get_tracer("t").start_as_current_span(name) as span:
        pass
    return span


def test_a_new_file_is_created_0600_and_an_existing_file_keeps_its_mode(tmp_path):
    from opentelemetry.sdk.trace.export import SpanExportResult

    old = os.umask(0o022)  # the common umask: it would leave a 0644 file world-readable
    try:
        new = tmp_path / "new.jsonl"
        assert OpenAIScopesFileSpanExporter(new).export([_one_span()]) is SpanExportResult.SUCCESS
        assert stat.S_IMODE(new.stat().st_mode) == FILE_MODE == 0o600
        shared = tmp_path / "shared.jsonl"
        shared.write_text("")
        shared.chmod(0o640)  # made beforehand for a log shipper in the file's group: left as it is
        assert OpenAIScopesFileSpanExporter(shared).export([_one_span()]) is SpanExportResult.SUCCESS
        assert stat.S_IMODE(shared.stat().st_mode) == 0o640
        assert json.loads(shared.read_text())["resourceSpans"]
    finally:
        os.umask(old)


def _refused(tmp_path, caplog, path: Path, reason: str) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OpenAIScopesFileSpanExporter(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_openai_scopes.exporter"):
        for _ in range(3):
            assert exporter.export([_one_span()]) is SpanExportResult.FAILURE
    warnings = [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes.exporter"]
    assert len(warnings) == 1 and reason in warnings[0] and "nothing written" in warnings[0], warnings
    assert str(path) in warnings[0]


def test_a_symlink_at_the_path_is_refused_with_one_warning_and_nothing_written(tmp_path, caplog):
    """Whoever can write the directory could otherwise point the path at another file of the app's user."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    link = tmp_path / "spans.jsonl"
    link.symlink_to(victim)
    _refused(tmp_path, caplog, link, "symbolic link")
    assert victim.read_text() == "precious\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert link.is_symlink()
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "would-be-created")
    _refused(tmp_path, caplog, dangling, "symbolic link")
    assert not (tmp_path / "would-be-created").exists()


def test_a_hard_link_at_the_path_is_refused(tmp_path, caplog):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "spans.jsonl"
    os.link(victim, link)
    _refused(tmp_path, caplog, link, "2 links")
    assert victim.read_text() == "precious\n"


def test_a_fifo_at_the_path_never_blocks_the_exporting_thread(tmp_path, caplog):
    """Without a reader, opening a FIFO for writing blocks forever: the export thread (the app's own thread under
    SimpleSpanProcessor) would hang. It is refused at once instead."""
    fifo = tmp_path / "spans.jsonl"
    os.mkfifo(fifo)
    done = threading.Event()
    result = []

    def run():
        result.append(_refused(tmp_path, caplog, fifo, "not a regular file"))
        done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert done.wait(60), "the export blocked on the FIFO"
    finally:
        if not done.is_set():  # release the blocked writer (the old behaviour) so the thread can end
            try:
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            except OSError as exc:
                assert exc.errno == errno.ENXIO
    assert result == [None]


# ---- one span never costs another (issue 16, item 5) -------------------------------------------------
def test_one_span_that_cannot_be_encoded_never_costs_the_rest_of_its_batch(tmp_path, caplog):
    """Text that is not valid Unicode is repaired, values the file cannot hold (integers beyond 64 bits, NaN and
    infinite doubles, which the report would read as an unreadable line) are left out and counted, and a span
    that still cannot be encoded is dropped alone, counted, logged once."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Status, StatusCode

    tracer = TracerProvider().get_tracer("t")
    spans = []
    with tracer.start_as_current_span("good-before", attributes={"openai.scope.missing": ["api.threads.read"]}) as s:
        pass
    spans.append(s)
    with tracer.start_as_current_span("bad\ud800name", attributes={
            "message": "lone \udcff surrogate", "list": ["ok", "\ud800"], "nan": math.nan, "inf": -math.inf,
            "huge": 2**64, "digits": 10**5000, "kept": 7}) as s:
        s.set_status(Status(StatusCode.ERROR, "status \ud800 text"))
        s.add_event("event\udc80", {"v": "\udfff"})
    spans.append(s)
    # What a buggy processor might hand on: a span with no kind.
    unencodable = ReadableSpan(name="cannot", context=spans[0].context, kind=None)
    spans.append(unencodable)
    with tracer.start_as_current_span("good-after") as s:
        pass
    spans.append(s)

    path = tmp_path / "spans.jsonl"
    exporter = OpenAIScopesFileSpanExporter(path)
    with caplog.at_level(logging.WARNING, logger="otel_openai_scopes.exporter"):
        exporter.export(spans)
        exporter.export([unencodable, spans[0]])
    raw = path.read_bytes()
    raw.decode("utf-8")  # strict: valid UTF-8 throughout
    docs = [json.loads(line) for line in raw.splitlines()]
    written = raw_spans(docs)
    assert [sp["name"] for sp in written] == ["good-before", "bad\ufffdname", "good-after", "good-before"]
    bad = written[1]
    attrs = {kv["key"]: kv["value"] for kv in bad["attributes"]}
    assert attrs["message"] == {"stringValue": "lone \ufffd surrogate"}
    assert attrs["list"]["arrayValue"]["values"][1] == {"stringValue": "\ufffd"}
    assert not {"nan", "inf", "huge", "digits"} & set(attrs) and attrs["kept"] == {"intValue": "7"}
    assert bad["droppedAttributesCount"] == 4
    assert bad["status"] == {"code": 2, "message": "status \ufffd text"}
    assert bad["events"][0]["name"] == "event\ufffd"
    assert exporter.dropped_spans == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes.exporter"]
    assert len(logged) == 1 and "dropped alone" in logged[0], logged
    assert [s.name for s in read_spans([path])] == ["good-before", "bad\ufffdname", "good-after", "good-before"]
