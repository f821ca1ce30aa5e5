"""``otel-openai-scopes doctor``: pure logic (probe table, judging, flaps, exit codes) and the real CLI
against the fake server on 127.0.0.1 (real openai client, real HTTP, a subprocess per run)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools import doctor as D
from otel_openai_scopes.tools.cli import app
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from otel_openai_scopes.fingerprint import describe
from otel_openai_scopes.tools.otlp_json import read_spans
from otel_openai_scopes.scope_map import build_matcher

SRC = Path(__file__).resolve().parents[1] / "src"
KEY = "sk-proj-DOCTORtest" + "k" * 40 + "Qx42"
THREADS_READ = "api.threads.read"
PROBED = [p for p in D.PROBES if not p.opt_in]
ALL_READ_SCOPES = sorted({s for p in PROBED for s in p.scopes})
THREADS_TEMPLATE = "/threads/{thread_id}"


def _has_call(probe: D.Probe) -> bool:
    return D.resolve_call(openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"), probe) is not None


AVAILABLE = {p.family: _has_call(p) for p in D.PROBES}


# ---- the probe table ------------------------------------------------------------------------------
def test_probe_scopes_and_operations_match_the_scope_map():
    matcher = build_matcher()
    for probe in D.PROBES:
        ep = matcher.match(probe.method, probe.path)
        assert ep.known, probe.family
        assert ep.scopes == probe.scopes, probe.family
        assert ep.operation in probe.calls, probe.family


def test_default_probes_only_read_and_the_model_request_probe_is_opt_in():
    assert {p.method for p in PROBED} == {"GET"}
    assert [p.family for p in D.PROBES if p.opt_in] == ["model_request"]
    assert {p.family for p in PROBED} >= {"models", "assistants", "threads", "responses", "files", "batches",
                                          "vector_stores", "fine_tuning"}
    absent = [p for p in D.PROBES if p.absent_id]
    assert {p.family for p in absent} == {"threads", "responses"}
    for p in absent:  # realistic id prefixes, so the real API answers 404 rather than 400 "invalid id"
        assert p.args and "nonexistent" in p.args[0] and p.path.endswith(p.args[0])


def test_threads_and_vector_stores_exist_in_every_supported_sdk():
    assert AVAILABLE["threads"] and AVAILABLE["vector_stores"] and AVAILABLE["models"]


# ---- judging one attempt ----------------------------------------------------------------------------
def _scope_body(*scopes: str) -> dict:
    return {"error": {"message": f"You have insufficient permissions for this operation. Missing scopes: "
                                 f"{', '.join(scopes)}. Check that you have the correct role.",
                      "type": "invalid_request_error", "param": None, "code": None}}


def test_judge_ok_missing_and_error():
    assert D.judge(200).outcome == D.OK
    assert D.judge(404, {"error": {"message": "No thread found"}}, True).outcome == D.OK
    assert D.judge(404, {"error": {"message": "Invalid URL"}}, False).outcome == D.ERROR
    missing = D.judge(401, _scope_body(THREADS_READ), True)
    assert (missing.outcome, missing.missing_scopes, missing.status) == (D.MISSING, (THREADS_READ,), 401)
    assert D.judge(403, _scope_body("api.model.read", "model.read")).missing_scopes == ("api.model.read", "model.read")
    assert D.judge(401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}).outcome == D.ERROR
    for status in (400, 429, 500, 503):
        assert D.judge(status, _scope_body(THREADS_READ)).outcome == D.ERROR, status  # only 401/403 are verdicts
    assert D.judge(401, "<html>Unauthorized</html>").outcome == D.ERROR


def test_judge_masks_the_key_in_error_details():
    j = D.judge(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}},
                False, KEY)
    assert j.outcome == D.ERROR and "invalid_api_key" in j.detail
    assert KEY not in j.detail and "DOCTORtest" not in j.detail


def test_judge_failure_uses_the_response_or_reports_a_connection_error():
    class StatusError(Exception):
        status_code = 401
        body = _scope_body(THREADS_READ)["error"]  # the SDK keeps only the inner error object

    assert D.judge_failure(StatusError(), True).outcome == D.MISSING
    conn = D.judge_failure(ConnectionError(f"connection refused for {KEY}"), False, KEY)
    assert conn.outcome == D.ERROR and conn.status == 0 and "ConnectionError" in conn.detail and KEY not in conn.detail


# ---- across attempts, exit codes -------------------------------------------------------------------------
def test_family_verdicts():
    assert D.family_verdict(Counter({D.OK: 3})) == D.GRANTED
    assert D.family_verdict(Counter({D.OK: 3, D.ERROR: 1})) == D.GRANTED
    assert D.family_verdict(Counter({D.MISSING: 2, D.ERROR: 1})) == D.MISSING_VERDICT
    assert D.family_verdict(Counter({D.MISSING: 1, D.OK: 5})) == D.FLAPPING
    assert D.family_verdict(Counter({D.ERROR: 2})) == D.INCONCLUSIVE
    assert D.family_verdict(Counter({D.NA: 2})) == D.NOT_AVAILABLE
    assert D.family_verdict(Counter()) == D.NOT_PROBED


@given(st.lists(st.sampled_from([D.OK, D.MISSING, D.ERROR]), min_size=1, max_size=30))
def test_flapping_iff_both_ok_and_missing(outcomes):
    flaps = D.flapping({"threads": outcomes, "models": [D.OK] * len(outcomes)})
    assert flaps == (["threads"] if D.OK in outcomes and D.MISSING in outcomes else [])


def test_exit_codes():
    G, M, F, I, NA, NP = D.GRANTED, D.MISSING_VERDICT, D.FLAPPING, D.INCONCLUSIVE, D.NOT_AVAILABLE, D.NOT_PROBED
    assert D.exit_code([G, G, NA, NP]) == D.EXIT_OK == 0
    assert D.exit_code([G, M, NP]) == D.EXIT_MISSING == 1
    assert D.exit_code([G, F]) == D.EXIT_FLAPPING == 3
    assert D.exit_code([M, F, I]) == D.EXIT_FLAPPING  # flapping outranks missing
    assert D.exit_code([M, I]) == D.EXIT_MISSING  # missing outranks inconclusive
    assert D.exit_code([G, I]) == D.EXIT_INCONCLUSIVE == 4
    assert D.exit_code([NA, NP]) == D.EXIT_INCONCLUSIVE  # nothing probed is no all-clear
    assert D.EXIT_USAGE == 2 and D.EXIT_KEY_REJECTED == 5 and D.EXIT_UNREACHABLE == 6
    assert set(D.EXIT_MEANING) == {0, 1, 2, 3, 4, 5, 6}


# ---- key and option helpers --------------------------------------------------------------------------
def test_read_key_from_env_or_stdin_never_echoed():
    assert D.read_key("MY_KEY", False, {"MY_KEY": f" {KEY}\n"}) == KEY
    assert D.read_key("MY_KEY", True, {}, io.StringIO(KEY + "\nrest\n")) == KEY
    with pytest.raises(D.UsageError, match="no key: set MY_KEY"):
        D.read_key("MY_KEY", False, {"OPENAI_API_KEY": KEY})
    with pytest.raises(D.UsageError, match="standard input was empty"):
        D.read_key("MY_KEY", True, {}, io.StringIO(""))
    with pytest.raises(D.UsageError) as info:
        D.read_key(KEY, False, {KEY: "x"})
    assert KEY not in str(info.value) and "NAME" in str(info.value)


def test_call_kwargs_and_resolve_call():
    def old_list(*, purpose=None, timeout=None): ...

    def new_list(*, limit=None, purpose=None): ...

    assert D.call_kwargs(old_list, (("limit", 1),)) == {}
    assert D.call_kwargs(new_list, (("limit", 1),)) == {"limit": 1}

    class Obj:
        pass

    client = Obj()
    client.beta = Obj()
    client.beta.vector_stores = Obj()
    client.beta.vector_stores.list = new_list
    probe = next(p for p in D.PROBES if p.family == "vector_stores")
    assert D.resolve_call(client, probe) == ("beta.vector_stores.list", new_list)
    assert D.resolve_call(Obj(), probe) is None


def test_display_url_drops_credentials():
    assert D.display_url("https://user:secret@proxy.example:8443/v1") == "https://proxy.example:8443/v1"
    assert D.display_url("https://proxy.example/v1?api-key=secret#x") == "https://proxy.example/v1"
    assert D.display_url("https://api.openai.com/v1") == "https://api.openai.com/v1"


# ---- the CLI, end to end -------------------------------------------------------------------------------------
def run_doctor_cli(*args: str, key: str | None = KEY, base_url: str | None = None, input: str | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if key is not None:
        env["OPENAI_API_KEY"] = key
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "doctor", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def row(output: str, family: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith(f"│ {family} ")]
    assert len(lines) == 1, (family, output)
    return lines[0]


def expected_ok(family: str) -> str:
    return "granted" if AVAILABLE[family] else "n/a"


def assert_no_writes(fake: FakeOpenAI) -> None:
    assert fake.created == 0
    methods = {method for (method, _template, _fp, _status) in fake.stats}
    assert methods == {"GET"}, fake.stats


def assert_key_hidden(result: subprocess.CompletedProcess, *files: Path) -> None:
    cred = describe(KEY)
    assert cred.hint in result.stdout and cred.fingerprint in result.stdout  # identity is shown...
    for text in (result.stdout, result.stderr, *(f.read_text() for f in files)):
        assert KEY not in text and "DOCTORtest" not in text  # ...the key never is


def test_all_scopes_granted_exits_0_and_creates_nothing():
    with FakeOpenAI() as fake:
        fake.grant(KEY)
        not_found = {"error": {"message": "No thread found with id 'thread_nonexistent_otel_doctor'.",
                               "type": "invalid_request_error", "param": None, "code": None}}
        fake.script("GET", r"/threads/thread_nonexistent", 404, not_found, times=2)  # what the real API answers
        result = run_doctor_cli("--repeat", "2", "--interval", "0", base_url=fake.base_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert fake.count(status=404, template=THREADS_TEMPLATE) == 2  # judged "allowed", not an error
        for probe in PROBED:
            assert expected_ok(probe.family) in row(result.stdout, probe.family)
        assert "not probed" in row(result.stdout, "model_request")
        assert "exit 0" in result.stdout
        assert_no_writes(fake)
        assert fake.count(template=THREADS_TEMPLATE) == 2  # every family was really asked, once per attempt
        assert fake.count(template="/models") == 2
        assert_key_hidden(result)


def test_model_request_probe_is_sent_only_when_asked():
    with FakeOpenAI() as fake:
        fake.grant(KEY)
        result = run_doctor_cli("--model-request", base_url=fake.base_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "granted" in row(result.stdout, "model_request")
        # the write check above would catch it: a POST is now in the server's stats
        assert ("POST", "/moderations") in {(m, t) for (m, t, _fp, _s) in fake.stats}


def test_restricted_key_missing_a_scope_exits_1_and_is_in_the_telemetry(tmp_path):
    out = tmp_path / "doctor.jsonl"
    with FakeOpenAI() as fake:
        fake.grant(KEY, scopes=[s for s in ALL_READ_SCOPES if s != THREADS_READ])
        result = run_doctor_cli("--out", str(out), "--base-url", fake.base_url,
                                "--organization", "org-doctor", "--project", "proj_doctor")
        assert result.returncode == D.EXIT_MISSING == 1, result.stdout + result.stderr
        threads = row(result.stdout, "threads")
        assert "MISSING" in threads and THREADS_READ in threads and "+" not in threads
        for probe in PROBED:
            if probe.family != "threads":
                assert expected_ok(probe.family) in row(result.stdout, probe.family)
        assert "MISSING threads" in result.stdout and "exit 1" in result.stdout
        assert "organization org-doctor, project proj_doctor" in result.stdout
        assert_no_writes(fake)
        assert fake.count(status=401, template=THREADS_TEMPLATE) == 1

    spans = list(read_spans([out]))
    errors = [s for s in spans if s.attributes.get(A.SCOPE_ERROR) is True]
    assert len(errors) == 1
    attrs = errors[0].attributes
    assert attrs[A.SCOPE_MISSING] == [THREADS_READ]
    assert attrs[A.TEMPLATE] == "/v1" + THREADS_TEMPLATE and attrs[A.HTTP_STATUS] == 401
    assert attrs[A.KEY_FINGERPRINT] == describe(KEY).fingerprint
    assert attrs[A.ORGANIZATION] == "org-doctor" and attrs[A.PROJECT] == "proj_doctor"
    assert attrs[A.REQUEST_ID].startswith("req_") and attrs[A.REQUEST_ID] in result.stdout  # quoted for support
    ok_templates = {s.attributes[A.TEMPLATE] for s in spans if s.attributes.get(A.HTTP_STATUS) == 200}
    assert "/v1/models" in ok_templates and "/v1" + THREADS_TEMPLATE not in ok_templates
    assert_key_hidden(result, out)


def test_flapping_scope_exits_3(tmp_path):
    out = tmp_path / "doctor.jsonl"
    attempts = 8
    with FakeOpenAI(seed=20260410) as fake:
        fake.grant(KEY)
        fake.lose_scope(KEY, THREADS_READ, duration=600, probability=0.5)
        result = run_doctor_cli("--repeat", str(attempts), "--interval", "0.01", "--out", str(out),
                                base_url=fake.base_url)
        failed = fake.count(status=401, template=THREADS_TEMPLATE)
        assert 0 < failed < attempts  # the seed gives both outcomes
        assert result.returncode == D.EXIT_FLAPPING == 3, result.stdout + result.stderr
        threads = row(result.stdout, "threads")
        assert "FLAPPING" in threads
        assert threads.count("X") == failed and threads.count("+") == attempts - failed
        for probe in PROBED:
            if probe.family != "threads":
                assert "FLAPPING" not in row(result.stdout, probe.family)
                assert expected_ok(probe.family) in row(result.stdout, probe.family)
        assert (f"FLAPPING threads: {THREADS_READ} missing on {failed} and allowed on {attempts - failed} of "
                f"{attempts} attempts") in result.stdout
        assert "exit 3" in result.stdout
        assert_no_writes(fake)
    errors = [s for s in read_spans([out]) if s.attributes.get(A.SCOPE_ERROR) is True]
    assert len(errors) == failed
    # the instrumentation's own diagnosis agrees once the key has succeeded for the scope
    assert A.DIAGNOSIS_SCOPE_FLAPPING in {s.attributes.get(A.DIAGNOSIS) for s in errors}
    assert_key_hidden(result, out)


def test_rejected_key_is_one_verdict_line_exit_5_masked_once():
    with FakeOpenAI() as fake:  # no grant: every request gets 401 invalid_api_key (which quotes part of the key)
        result = run_doctor_cli(base_url=fake.base_url)
        assert result.returncode == D.EXIT_KEY_REJECTED == 5, result.stdout + result.stderr
        assert "inconclusive" in row(result.stdout, "threads") and "invalid_api_key" in result.stdout
        verdicts = [ln for ln in result.stdout.splitlines() if ln.startswith(("KEY REJECTED", "INCONCLUSIVE"))]
        assert len(verdicts) == 1 and verdicts[0].startswith("KEY REJECTED: every probe (")
        assert "exit 5: key rejected (invalid_api_key)" in result.stdout
        assert "*** API key provided" not in result.stdout  # masked once: the words around the key survive
        assert fake.count(status=401) > 0
        assert_key_hidden(result)


def test_unreachable_server_is_one_verdict_line_naming_the_url_without_credentials():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    result = run_doctor_cli("--timeout", "3", base_url=f"http://user:s3cretpw@127.0.0.1:{port}/v1?token=q5ecret")
    assert result.returncode == D.EXIT_UNREACHABLE == 6, result.stdout + result.stderr
    verdicts = [ln for ln in result.stdout.splitlines() if ln.startswith(("UNREACHABLE", "INCONCLUSIVE"))]
    assert len(verdicts) == 1 and verdicts[0].startswith(f"UNREACHABLE: no answer from http://127.0.0.1:{port}/v1")
    assert verdicts[0].endswith("check --base-url / OPENAI_BASE_URL, the proxy and the network.")  # one line
    assert "s3cretpw" not in result.stdout + result.stderr and "q5ecret" not in result.stdout + result.stderr
    assert "exit 6: server unreachable" in result.stdout


@pytest.mark.parametrize("url", ["htp:/nowhere", "http://127.0.0.1:99999/v1", "http:///v1", "127.0.0.1:8787"])
def test_malformed_base_url_is_a_usage_error(url):
    result = run_doctor_cli(base_url=url)  # from OPENAI_BASE_URL
    assert result.returncode == D.EXIT_USAGE == 2, result.stdout + result.stderr
    assert result.stderr.startswith("doctor: the base URL") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_key_from_stdin():
    with FakeOpenAI() as fake:
        fake.grant(KEY)
        result = run_doctor_cli("--stdin", key=None, base_url=fake.base_url, input=KEY + "\n")
        assert result.returncode == 0, result.stdout + result.stderr
        assert fake.count(status=200) > 0
        assert_key_hidden(result)


def test_no_key_exits_2_with_a_clear_message():
    with FakeOpenAI() as fake:
        result = run_doctor_cli(key=None, base_url=fake.base_url)
        assert result.returncode == D.EXIT_USAGE == 2
        assert "no key: set OPENAI_API_KEY" in result.stderr and "--stdin" in result.stderr
        assert fake.requests_seen == 0


def test_usage_errors_in_process():
    runner = CliRunner()
    env = {"OPENAI_API_KEY": None, "DOCTOR_KEY": None}
    res = runner.invoke(app, ["doctor", "--key-env", "DOCTOR_KEY"], env=env)
    assert res.exit_code == 2 and "no key: set DOCTOR_KEY" in res.output
    res = runner.invoke(app, ["doctor", "--key-env", KEY], env=env)  # a key pasted where the NAME goes
    assert res.exit_code == 2 and "never put a key on the command line" in res.output
    assert KEY not in res.output and "DOCTORtest" not in res.output
    res = runner.invoke(app, ["doctor", "--repeat", "-1"], env={"OPENAI_API_KEY": KEY})
    assert res.exit_code == 2 and "--repeat" in res.output
