"""``report``'s fleet verdict joins on what the live diagnosis joins on (issue 14): key fingerprint, organization,
project and host, and the endpoint. A platform-side verdict needs a success of the same key tuple; the same key
passing with another organization or project is ``context_mismatch`` (configuration), naming both contexts.

The end-to-end test runs two app processes under ``opentelemetry-instrument`` with one key: a pod sending
``OpenAI-Project: proj_ok`` (the key holds every scope there) and one whose ``OPENAI_PROJECT_ID`` points at
``proj_bad`` (the key lacks the threads scopes there), against the project's fake OpenAI server, written by the
``openai_scopes_file`` exporter: ``report --json`` must say ``context_mismatch``, never ``scope_flapping``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from otel_openai_scopes.tools.otlp_file import PATH_ENV
from otel_openai_scopes.tools.report import analyze, explanation, fleet_verdict, to_json, verdict_lines
from tests.support.keys import leaked_pieces, make_key
from tests.support.spans import MS, T0, call, err

BIN = Path(sys.executable).parent
READ = "api.threads.read"


def in_context(span: Any, organization: str = "", project: str = "", host: str = "api.openai.com") -> Any:
    for name, value in ((A.ORGANIZATION, organization), (A.PROJECT, project), (A.HOST, host)):
        if value:
            span.attributes[name] = value
    return span


# ---- the rules on spans --------------------------------------------------------------------------------
def test_the_same_key_passing_in_another_project_is_context_mismatch_never_platform_side():
    spans = [in_context(call(T0 + k * 50 * MS, process="pod-ok", client="ok-1"), project="proj_ok")
             for k in range(40)]
    spans += [in_context(err(T0 + k * 300 * MS, process="pod-bad", client="bad-1"), project="proj_bad")
              for k in range(6)]
    analysis = analyze(spans, gap_seconds=5)
    (w,) = analysis.windows
    assert (w.organization, w.project, w.host) == ("", "proj_bad", "api.openai.com")
    assert w.diagnosis == V.CONTEXT_MISMATCH and w.successes_same_key == 0
    assert dict(w.other_contexts) == {("", "proj_ok"): 31}  # the successes in the window's buckets
    text = explanation(w)
    assert text.startswith("configuration: the same key passed the scope check on these endpoints during the "
                           "window with organization (none sent), project proj_ok (31 times), and never with "
                           "organization (none sent), project proj_bad, where it failed.")
    assert "Not platform-side." in text and "OpenAI support" not in text
    assert "for key fp-a (organization (none sent), project proj_bad) from 1 client" in verdict_lines(analysis)[0]
    doc = to_json(analysis)["windows"][0]
    assert (doc["organization"], doc["project"], doc["host"]) == ("", "proj_bad", "api.openai.com")
    assert doc["passing_contexts"] == [{"organization": "", "project": "proj_ok", "successes": 31}]


def test_a_success_of_the_same_key_tuple_still_makes_it_platform_side():
    spans = [in_context(call(T0 + k * 50 * MS, process=f"pod-{k % 2}"), organization="org-1", project="proj_1")
             for k in range(40)]
    spans += [in_context(err(T0 + k * 300 * MS, process="pod-2"), organization="org-1", project="proj_1")
              for k in range(6)]
    (w,) = analyze(spans, gap_seconds=5).windows
    assert w.diagnosis == V.SCOPE_FLAPPING and w.successes_same_key == 31 and not w.other_contexts


def test_successes_on_another_host_are_no_evidence_about_this_one():
    """A key passing through a gateway and failing at api.openai.com: neither flapping nor a context mismatch."""
    spans = [in_context(call(T0 + k * 50 * MS), host="gateway.internal") for k in range(40)]
    spans += [in_context(err(T0 + k * 300 * MS)) for k in range(6)]
    (w,) = analyze(spans, gap_seconds=5).windows
    assert w.diagnosis == V.NEVER_GRANTED and w.successes_same_key == 0 and not w.other_contexts


def test_another_organization_counts_as_another_context():
    spans = [in_context(call(T0 + k * 50 * MS), organization="org-right", project="proj_1") for k in range(10)]
    spans += [in_context(err(T0 + k * 50 * MS), organization="org-wrong", project="proj_1") for k in range(3)]
    (w,) = analyze(spans, gap_seconds=5).windows
    assert w.diagnosis == V.CONTEXT_MISMATCH and list(w.other_contexts) == [("org-right", "proj_1")]


def test_a_process_live_context_mismatch_names_the_context_it_saw_pass():
    """The passing calls are in a file the report was not given: the failing process's own spans name them."""
    spans = []
    for k in range(3):
        s = in_context(err(T0 + k * MS, diagnosis=V.CONTEXT_MISMATCH), project="proj_bad")
        s.attributes[A.DIAGNOSIS_LAST_SUCCESS_PROJECT] = "proj_ok"
        spans.append(s)
    analysis = analyze(spans)
    (w,) = analysis.windows
    assert w.diagnosis == V.CONTEXT_MISMATCH
    assert "a process saw the same key pass the scope check with organization (none sent), project proj_ok " \
           "shortly before it failed with organization (none sent), project proj_bad" in explanation(w)
    assert to_json(analysis)["windows"][0]["passing_contexts"] == [
        {"organization": "", "project": "proj_ok", "successes": 0}]


def test_keys_counted_together_past_the_cap_get_no_verdict_from_successes():
    """Past MAX_KEYS, keys share one lane: a success of one of them is no evidence about another."""
    from otel_openai_scopes.tools.report import limits as L

    spans = [call(T0 + k * MS, key=f"{k:016x}") for k in range(L.MAX_KEYS)]
    spans += [call(T0 + (k + 2000) * MS, key=f"ok-{k}") for k in range(20)]  # past the cap: the (other) key
    spans += [err(T0 + (k + 2000) * MS + 1, key=f"bad-{k}") for k in range(5)]  # also (other)
    analysis = analyze(spans, gap_seconds=5)
    (w,) = analysis.windows
    assert w.fingerprint == L.OTHER and w.diagnosis == V.UNKNOWN
    assert "counted together past its caps" in explanation(w)


def test_fleet_verdict_order():
    F, C, N, U, M = V.SCOPE_FLAPPING, V.CONTEXT_MISMATCH, V.NEVER_GRANTED, V.UNKNOWN, V.CLIENT_MUTATED
    assert fleet_verdict(5, 0, 1, {}, other_context_successes=9) == F  # the same tuple passed: platform-side
    assert fleet_verdict(5, 0, 0, {N: 5}, other_context_successes=1) == C
    assert fleet_verdict(1, 0, 0, {U: 1}, other_context_successes=1) == C  # certain from the first failure
    assert fleet_verdict(5, 0, 0, {C: 5}) == C
    assert fleet_verdict(5, 5, 0, {}, other_context_successes=1) == M
    assert fleet_verdict(5, 0, 3, {F: 5}, mixed=True) == U


# ---- one key, two projects: the real SDK, two processes, the file exporter -----------------------------
APP = """
import os, pathlib, time, openai
client = openai.OpenAI(base_url=os.environ["FAKE_BASE_URL"], max_retries=0)  # key and project from the env
ready, stop = pathlib.Path(os.environ["READY"]), pathlib.Path(os.environ["STOP"])
role, n = os.environ["ROLE"], 0
while True:
    try:
        client.beta.threads.runs.list("thread_1")
        ready.touch()
    except openai.AuthenticationError:
        n += 1
    if role == "bad" and n >= 6:
        stop.touch()
        break
    if role == "ok" and stop.exists():
        break
    time.sleep(0.05 if role == "ok" else 0.3)
print("done", role, n)
"""


def test_one_key_two_projects_through_the_sdk_is_context_mismatch_never_scope_flapping(tmp_path):
    key = make_key()
    fake = FakeOpenAI().start()
    try:
        fake.grant(key)
        fake.deny(key, "proj_bad", [READ, "api.threads.write"])
        (tmp_path / "app.py").write_text(APP)
        spans = tmp_path / "spans.jsonl"
        base = {**os.environ, "OPENAI_API_KEY": key, "FAKE_BASE_URL": fake.base_url, PATH_ENV: str(spans),
                "READY": str(tmp_path / "ready"), "STOP": str(tmp_path / "stop"), "OTEL_SERVICE_NAME": "threads-app",
                "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
        base.pop("OPENAI_ORG_ID", None)
        cmd = [str(BIN / "opentelemetry-instrument"), "--traces_exporter", "openai_scopes_file", sys.executable,
               str(tmp_path / "app.py")]
        pods = {}
        for role, project in (("ok", "proj_ok"), ("bad", "proj_bad")):
            env = {**base, "ROLE": role, "OPENAI_PROJECT_ID": project,
                   "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id=pod-{role}"}
            pods[role] = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
            deadline = time.monotonic() + 60
            while role == "ok" and not (tmp_path / "ready").exists():  # the good pod passes before the bad starts
                assert time.monotonic() < deadline and pods[role].poll() is None, pods[role].communicate()
                time.sleep(0.05)
        for role, proc in pods.items():
            out, errs = proc.communicate(timeout=120)
            assert proc.returncode == 0 and f"done {role}" in out, errs[-3000:]
    finally:
        fake.stop()

    report = subprocess.run([str(BIN / "otel-openai-scopes"), "report", "--json", str(spans)], capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 1, report.stderr
    doc = json.loads(report.stdout)
    assert doc["totals"]["processes"] == 2 and doc["totals"]["scope_errors"] == 6
    (w,) = doc["windows"]
    assert w["diagnosis"] == V.CONTEXT_MISMATCH, w["explanation"]
    assert (w["organization"], w["project"], w["host"]) == ("", "proj_bad", "127.0.0.1")
    assert w["successes_same_key"] == 0 and w["processes_failing"] == 1
    (passing,) = w["passing_contexts"]
    assert passing["project"] == "proj_ok" and passing["successes"] > 0
    assert "project proj_ok" in w["explanation"] and "project proj_bad" in w["explanation"]
    # the failing pod never saw a success of its own: its live verdicts could not tell
    assert {h["diagnosis"] for h in w["diagnosis_history"]} <= {V.UNKNOWN, V.NEVER_GRANTED}
    text = subprocess.run([str(BIN / "otel-openai-scopes"), "report", str(spans)], capture_output=True, text=True,
                          timeout=120)
    assert "-> context_mismatch: configuration" in text.stdout and "scope_flapping" not in text.stdout.split(
        "Diagnosis")[-1]
    assert leaked_pieces(key, report.stdout + text.stdout + spans.read_text()) == []
