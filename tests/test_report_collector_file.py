"""``report`` on what a real Collector's ``file`` exporter wrote: the same windows and fleet verdicts as on the
app's own ``openai_scopes_file`` output.

Two app processes (the real openai SDK against the fake server, under ``opentelemetry-instrument``) export their
spans twice: to ``openai_scopes_file`` and over OTLP/HTTP to the real Collector running the shipped
``base.yaml`` pipeline (scrub, redaction, scope-error fan-out), whose traces pipeline writes OTLP JSON lines with
the contrib ``file`` exporter (format json). ``report --json`` on that file, on a gzip copy of it and on the app's
file must agree on everything but the per-file accounting. Binary: tests/stack.py (skips locally without it,
fails under CI=true).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools.otlp_file import PATH_ENV
from otel_openai_scopes.tools.otlp_json import read_spans
from tests.support.keys import leaked_pieces, make_key
from tests.support.stack import Collector, require_binaries, wait_until

BIN = Path(sys.executable).parent
READ = "api.threads.read"

# Per process: a key whose read scope flaps (about half of the run lists pass), a key that never had it, and
# (process a only) a shared client whose api_key a task swapped to a third key and never restored.
APP = """
import os, openai
base = os.environ["FAKE_BASE_URL"]
flap = openai.OpenAI(api_key=os.environ["KEY_FLAP"], base_url=base, max_retries=0)
never = openai.OpenAI(api_key=os.environ["KEY_NEVER"], base_url=base, max_retries=0)
flap.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
for client, n in ((flap, 12), (never, 4)):
    for _ in range(n):
        try:
            client.beta.threads.runs.list("thread_1")
        except openai.AuthenticationError:
            pass
if os.environ.get("KEY_SWAP"):
    shared = openai.OpenAI(api_key=os.environ["KEY_FLAP"], base_url=base, max_retries=0)
    shared.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    shared.api_key = os.environ["KEY_SWAP"]
    for _ in range(3):
        try:
            shared.beta.threads.runs.list("thread_1")
        except openai.AuthenticationError:
            pass
print("done")
"""


def report_json(*files: Path) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([str(BIN / "otel-openai-scopes"), "report", "--json", *map(str, files)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return out.returncode, json.loads(out.stdout)


def our_spans(path: Path) -> int:
    return sum(1 for s in read_spans([path]) if A.OPERATION in s.attributes)


def test_report_on_the_collector_file_exporter_output_matches_the_apps_own_file(fake, tmp_path):
    bins = require_binaries("otelcol")
    keys = {"KEY_FLAP": make_key(), "KEY_NEVER": make_key(), "KEY_SWAP": make_key()}
    fake.grant(keys["KEY_FLAP"])
    fake.lose_scope(keys["KEY_FLAP"], READ, duration=600, probability=0.5)
    for name in ("KEY_NEVER", "KEY_SWAP"):
        fake.grant(keys[name], scopes=["model.request", "api.model.request"])
    collector_file = tmp_path / "collector" / "spans.jsonl"
    app_file = tmp_path / "app" / "spans.jsonl"
    # The shipped pipeline with the file exporter as the main backend; the metrics pipelines (the span-derived
    # counter) go to a quiet debug exporter instead of a backend that is not there.
    extra = {
        "exporters": {"file/report": {"path": str(collector_file), "format": "json", "flush_interval": "100ms"},
                      "debug/quiet": {"verbosity": "basic"}},
        "service": {"pipelines": {
            "traces": {"exporters": ["file/report", "forward/scope_errors"]},
            "metrics": {"exporters": ["debug/quiet"]},
            "metrics/scope_errors": {"exporters": ["debug/quiet"]},
        }},
    }
    collector_file.parent.mkdir(parents=True)
    col = Collector.start(bins, tmp_path / "collector", ["base.yaml"], env={"MAIN_OTLP_ENDPOINT": "127.0.0.1:1"},
                          extra=extra)
    try:
        (tmp_path / "app.py").write_text(APP)
        for instance in ("app-a", "app-b"):
            env = {**os.environ, **keys, "FAKE_BASE_URL": fake.base_url, PATH_ENV: str(app_file),
                   "OTEL_SERVICE_NAME": "scopes-app", "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}",
                   "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                   "OTEL_EXPORTER_OTLP_ENDPOINT": col.otlp_http, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
            if instance != "app-a":
                del env["KEY_SWAP"]
            proc = subprocess.run([str(BIN / "opentelemetry-instrument"), "--traces_exporter",
                                   "otlp,openai_scopes_file", sys.executable, str(tmp_path / "app.py")],
                                  capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
            assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-3000:]
        expected = our_spans(app_file)
        assert expected == 2 * (1 + 12 + 4) + 1 + 3
        wait_until(lambda: collector_file.exists() and our_spans(collector_file) >= expected, timeout=30,
                   what=f"{expected} spans in the Collector's file")
    finally:
        col.stop()
    assert our_spans(collector_file) == expected, col.log()[-3000:]
    gz = tmp_path / "spans.jsonl.gz"
    with open(collector_file, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)

    code_app, own = report_json(app_file)
    results = {name: report_json(path) for name, path in (("collector", collector_file), ("gzip", gz))}
    assert code_app == 1
    # the scenario is not trivial: one window per verdict, across both processes
    verdicts = {w["fingerprint"]: w["diagnosis"] for w in own["windows"]}
    assert sorted(verdicts.values()) == sorted([A.DIAGNOSIS_SCOPE_FLAPPING, A.DIAGNOSIS_NEVER_GRANTED,
                                                A.DIAGNOSIS_CLIENT_MUTATED])
    assert own["totals"]["processes"] == 2
    never = next(w for w in own["windows"] if w["diagnosis"] == A.DIAGNOSIS_NEVER_GRANTED)
    assert never["errors"] == 8 and never["processes_failing"] == 2
    flapping = next(w for w in own["windows"] if w["diagnosis"] == A.DIAGNOSIS_SCOPE_FLAPPING)
    assert flapping["successes_same_key"] > 0 and flapping["errors"] > 0
    for name, (code, doc) in results.items():
        assert code == code_app, name
        assert doc["files"][0]["unreadable_lines"] == 0, name
        assert doc["files"][0]["compression"] == ("gzip" if name == "gzip" else ""), name
        for field in ("totals", "windows", "exit_code", "unreadable_lines", "error"):
            assert doc[field] == own[field], (name, field)
    # what the Collector wrote is its own (OTLP JSON of its pipeline, not a copy of the app's lines), key-free
    collector_text = collector_file.read_text()
    assert collector_text != app_file.read_text()
    for key in keys.values():
        assert leaked_pieces(key, collector_text) == []
