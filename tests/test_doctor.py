"""``otel-openai-scopes doctor``: pure logic (probe table, judging, flaps, exit codes) and the real CLI
against the fake server on 127.0.0.1 (real openai client, real HTTP, a subprocess per run)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.fingerprint import describe
from otel_openai_scopes.scope_map import build_matcher
from otel_openai_scopes.tools import doctor as D
from otel_openai_scopes.tools import exit_codes as X
from otel_openai_scopes.tools.cli import app
from otel_openai_scopes.tools.fake_server import FakeOpenAI, Identity
from otel_openai_scopes.tools.otlp_json import read_spans
from tests.support.keys import leaked_pieces, make_key
from tests.support.tokens import claim_values, identity, make_jwt, segment_pieces

SRC = Path(__file__).resolve().parents[1] / "src"
KEY = "sk-proj-DOCTORtest" + "k" * 40 + "Qx42"
THREADS_READ = "api.threads.read"
PROBED = [p for p in D.PROBES if not p.opt_in]
ALL_READ_SCOPES = sorted({s for p in PROBED for s in D.plan(p).scopes})
THREADS_TEMPLATE = "/threads/{thread_id}"


def _has_call(probe: D.Probe) -> bool:
    return D.resolve_call(openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"), D.plan(probe).calls) is not None


AVAILABLE = {p.family: _has_call(p) for p in D.PROBES}


# ---- the probe table ------------------------------------------------------------------------------
def test_probe_scopes_and_calls_come_from_the_scope_map():
    matcher = build_matcher()
    for probe in D.PROBES:
        ep = matcher.match(probe.method, probe.path)
        planned = D.plan(probe)
        assert ep.known and ep.scopes, probe.family  # every probe's request is in the map, with scopes
        assert planned.scopes == ep.scopes and planned.template == ep.template, probe.family
        assert planned.calls[0] == ep.operation, probe.family
    # derived, not copied: a user's scope map changes what the probe says its request needs
    custom = build_matcher({"GET /v1/threads/{thread_id}": ["api.threads.custom"]})
    threads = next(p for p in D.PROBES if p.family == "threads")
    assert D.plan(threads, custom).scopes == ("api.threads.custom",)
    assert D.plan(threads, custom).calls == ("beta.threads.retrieve",)  # the SDK call still from the packaged map


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
    assert D.family_verdict(Counter({D.OK: 3})) == V.PROBE_GRANTED
    assert D.family_verdict(Counter({D.OK: 3, D.ERROR: 1})) == V.PROBE_GRANTED
    assert D.family_verdict(Counter({D.MISSING: 2, D.ERROR: 1})) == V.PROBE_MISSING
    assert D.family_verdict(Counter({D.MISSING: 1, D.OK: 5})) == V.PROBE_FLAPPING
    assert D.family_verdict(Counter({D.ERROR: 2})) == V.PROBE_INCONCLUSIVE
    assert D.family_verdict(Counter({D.NA: 2})) == V.PROBE_NOT_AVAILABLE
    assert D.family_verdict(Counter()) == V.PROBE_NOT_PROBED


@given(st.lists(st.sampled_from([D.OK, D.MISSING, D.ERROR]), min_size=1, max_size=30))
def test_flapping_iff_both_ok_and_missing(outcomes):
    flaps = D.flapping({"threads": outcomes, "models": [D.OK] * len(outcomes)})
    assert flaps == (["threads"] if D.OK in outcomes and D.MISSING in outcomes else [])


def test_exit_codes():
    G, M, F, INC = V.PROBE_GRANTED, V.PROBE_MISSING, V.PROBE_FLAPPING, V.PROBE_INCONCLUSIVE
    NA, NP = V.PROBE_NOT_AVAILABLE, V.PROBE_NOT_PROBED
    assert D.exit_code([G, G, NA, NP]) == X.OK == 0
    assert D.exit_code([G, M, NP]) == X.FOUND == 1
    assert D.exit_code([G, F]) == X.FLAPPING == 3
    assert D.exit_code([M, F, INC]) == X.FLAPPING  # flapping outranks missing
    assert D.exit_code([M, INC]) == X.FOUND  # missing outranks inconclusive
    assert D.exit_code([G, INC]) == X.INCONCLUSIVE == 4
    assert D.exit_code([NA, NP]) == X.INCONCLUSIVE  # nothing probed is no all-clear
    assert D.exit_code([INC], "rejected") == X.KEY_REJECTED == 5
    assert D.exit_code([INC], "unreachable") == X.UNREACHABLE == 6
    assert D.exit_code([M, INC], "rejected") == X.FOUND  # a common cause only explains an inconclusive run
    assert set(X.TABLE["doctor"]) == {0, 1, 2, 3, 4, 5, 6}


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
    assert D.resolve_call(client, D.plan(probe).calls) == ("beta.vector_stores.list", new_list)
    assert D.resolve_call(Obj(), D.plan(probe).calls) is None


def test_display_url_drops_credentials():
    assert D.display_url("https://user:secret@proxy.example:8443/v1") == "https://proxy.example:8443/v1"
    assert D.display_url("https://proxy.example/v1?api-key=secret#x") == "https://proxy.example/v1"
    assert D.display_url("https://api.openai.com/v1") == "https://api.openai.com/v1"


# ---- the CLI, end to end -------------------------------------------------------------------------------------
def run_doctor_cli(*args: str, key: str | None = KEY, base_url: str | None = None, input: str | None = None,
                   timeout: float = 120, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env.update(extra_env or {})
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if key is not None:
        env["OPENAI_API_KEY"] = key
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "doctor", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def row(output: str, family: str) -> str:
    """The family's row of the probe matrix."""
    matrix = output.split("Scope probe: family x attempt", 1)[-1]
    lines = [ln for ln in matrix.splitlines() if ln.startswith(f"│ {family} ")]
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
        assert result.returncode == X.FOUND == 1, result.stdout + result.stderr
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
        assert result.returncode == X.FLAPPING == 3, result.stdout + result.stderr
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
        assert result.returncode == X.KEY_REJECTED == 5, result.stdout + result.stderr
        assert "inconclusive" in row(result.stdout, "threads") and "invalid_api_key" in result.stdout
        verdicts = [ln for ln in result.stdout.splitlines() if ln.startswith(("KEY REJECTED", "INCONCLUSIVE"))]
        assert len(verdicts) == 1 and verdicts[0].startswith("KEY REJECTED: every probe (")
        assert f"exit 5: {X.TABLE['doctor'][5]}" in result.stdout
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
    assert result.returncode == X.UNREACHABLE == 6, result.stdout + result.stderr
    verdicts = [ln for ln in result.stdout.splitlines() if ln.startswith(("UNREACHABLE", "INCONCLUSIVE"))]
    assert len(verdicts) == 1 and verdicts[0].startswith(f"UNREACHABLE: no answer from http://127.0.0.1:{port}/v1")
    assert verdicts[0].endswith("check --base-url / OPENAI_BASE_URL, the proxy and the network.")  # one line
    assert "s3cretpw" not in result.stdout + result.stderr and "q5ecret" not in result.stdout + result.stderr
    assert "exit 6: server unreachable" in result.stdout


@pytest.mark.parametrize("url", ["htp:/nowhere", "http://127.0.0.1:99999/v1", "http:///v1", "127.0.0.1:8787"])
def test_malformed_base_url_is_a_usage_error(url):
    result = run_doctor_cli(base_url=url)  # from OPENAI_BASE_URL
    assert result.returncode == X.USAGE == 2, result.stdout + result.stderr
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
        assert result.returncode == X.USAGE == 2
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


# ---- nothing secret, nothing hostile (issue 16) -----------------------------------------------------------
class OtlpSink:
    """An OTLP/HTTP receiver on loopback that keeps every request body (to scan what doctor exports)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_doctor_shows_and_exports_no_piece_of_any_secret(tmp_path):
    """A gateway token in the base path, a key the gateway quotes back, a password in the OTLP endpoint's
    user-info: none of them, nor any 8-character piece, in doctor's output, its --out file or its OTLP export."""
    token = make_key("gw", 40)
    password = make_key("pw", 24)
    out = tmp_path / "doctor.jsonl"
    sink = OtlpSink()
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://collector:{password}@127.0.0.1:{sink.port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    try:
        with FakeOpenAI(seed=20260410) as fake:
            fake.gateway_paths = True
            fake.grant(KEY, scopes=[s for s in ALL_READ_SCOPES if s != THREADS_READ])
            fake.lose_scope(KEY, "api.files.read", duration=600, probability=0.5)
            quoted = {"error": {"message": f"Invalid URL (GET /gw/{token}/v1/batches?api-key={KEY})",
                                "type": "invalid_request_error", "code": None}}
            fake.script("GET", r"/batches", 404, quoted, times=100)  # a gateway quoting what it was sent
            port = fake.port
            gateway = f"http://127.0.0.1:{port}/gw/{token}/v1"
            result = run_doctor_cli("--repeat", "3", "--interval", "0", "--out", str(out), base_url=gateway,
                                    extra_env=otlp)
            assert result.returncode == X.FLAPPING, result.stdout + result.stderr
            assert fake.count(status=401, template=THREADS_TEMPLATE) == 3  # the gateway path reached the API
            # user-info in the base URL: the SDK sends it as Basic credentials, the key is rejected, nothing shown
            fake.reset()
            with_userinfo = f"http://user:{password}@127.0.0.1:{fake.port}/gw/{token}/v1"
            rejected = run_doctor_cli(base_url=with_userinfo, extra_env=otlp)
            assert rejected.returncode == X.KEY_REJECTED, rejected.stdout + rejected.stderr
    finally:
        sink.close()
    exported = b"".join(sink.bodies).decode("latin-1")
    assert "api.threads.read" in exported  # the sink did receive the probe's telemetry
    texts = {"stdout": result.stdout, "stderr": result.stderr, "out": out.read_text(), "otlp": exported,
             "rejected stdout": rejected.stdout, "rejected stderr": rejected.stderr}
    for name, text in texts.items():
        for secret in (KEY, token, password):
            assert not leaked_pieces(secret, text), (name, leaked_pieces(secret, text))
    # URLs as spans show them: the path token as {token}, no user-info, no query
    shown = f"http://127.0.0.1:{port}/gw/{{token}}/v1"
    assert f"API {shown}," in result.stdout and f"API {shown}," in rejected.stdout
    assert "GET /gw/{token}/v1/threads/{thread_id}" in row(result.stdout, "threads")
    assert "INCONCLUSIVE batches: no attempt got a scope verdict; last error: HTTP 404 - Invalid URL (GET " \
           "/gw/***/v1/batches?api-key=***" in result.stdout  # what the gateway quoted, masked as on the span
    assert f"exported over OTLP to http://127.0.0.1:{sink.port}" in result.stdout
    templates = {s.attributes.get(A.TEMPLATE) for s in read_spans([out])}
    assert "/gw/{token}/v1/threads/{thread_id}" in templates  # the same text as the span's url.template


HOSTILE = "\x1b]0;pwned\x07\x1b[1A\x1b[2KALL GRANTED\x1b]52;c;ZXZpbA==\x07\u202eexe.gnp\x9b31m\u2066"
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def test_a_hostile_server_cannot_write_control_sequences_to_the_terminal():
    """Error text, codes, bodies and headers carrying ESC/OSC/CSI sequences and bidi overrides are shown as
    visible escapes: no title change, clipboard write or cursor move reaches the terminal."""
    hostile_error = {"error": {"message": HOSTILE, "type": "server_error", "code": HOSTILE[:12]}}
    with FakeOpenAI() as fake:
        fake.grant(KEY)
        fake.script("GET", r"/models", 500, hostile_error, times=10)
        fake.script("GET", r"/files", 502, ("<html>" + HOSTILE + "</html>").encode(), content_type="text/html",
                    times=10)
        fake.script("GET", r"/batches", 401, {"error": {"message": f"Missing scopes: api.batch.read {HOSTILE}",
                                                        "code": None}},
                    headers={"x-request-id": "req_\x9b2J\x85evil"}, times=10)
        fake.script("GET", r"/vector_stores", 503, HOSTILE.encode("utf-8"), content_type="", times=10)
        result = run_doctor_cli("--repeat", "2", "--interval", "0", "--organization", "org-\x1b[31mred",
                                base_url=fake.base_url)
    text = result.stdout + result.stderr
    assert result.returncode == X.FOUND, text  # batches: missing; the rest of the verdicts still stand
    assert not UNSAFE.findall(text), sorted(set(UNSAFE.findall(text)))
    # shown, inert: as a visible escape, or (error text the runtime's masking already made one line) as U+FFFD
    assert ("\\x1b]0;pwned\\x07" in text or "\ufffd]0;pwned\ufffd" in text) and "\\u202e" in text
    assert "MISSING batches" in text and "INCONCLUSIVE models" in text
    assert "org-\\x1b[31mred" in text


# ---- a token, read locally (issue 15) ----------------------------------------------------------------------
GRANT = ["api.model.read", "model.read", "api.assistants.read", "api.files.read", "api.batch.read"]


def assert_nothing_of_the_token(token: str, claims: dict, *texts: str) -> None:
    """No claim value (the scope claims aside) and no 12-character piece of any segment of the token."""
    for text in texts:
        for value in claim_values(claims):
            assert value not in text, value
        assert not [p for p in segment_pieces(token) if p in text]


def local_rows(stdout: str) -> dict[str, str]:
    """The token section's table: family -> its row."""
    section = stdout.split("The token's own grant", 1)[1].split("API ", 1)[0]
    return {line.split("│")[1].strip(): line for line in section.splitlines() if line.startswith("│ ")}


def test_doctor_reads_a_token_locally_before_and_without_any_request():
    claims = identity(scp=GRANT)
    token = make_jwt(claims)
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: no request can succeed
    result = run_doctor_cli("--stdin", "--timeout", "2", key=None, input=token + "\n",
                            base_url=f"http://127.0.0.1:{port}/v1")
    assert result.returncode == X.UNREACHABLE, result.stdout + result.stderr
    out = result.stdout
    assert out.index("Token, read locally") < out.index("API http://") < out.index("UNREACHABLE")
    cred = describe(token)
    assert f"token {cred.hint} (user_token, fingerprint {cred.fingerprint})" in out
    assert "from     identity claims: issuer, subject, client id (the same across refreshes)" in out
    assert "granted  " + " ".join(GRANT) in out
    rows = local_rows(out)
    assert set(rows) == {p.family for p in PROBED}
    for family in ("models", "assistants", "files", "batches"):
        assert "granted by its claims" in rows[family], rows[family]
    assert "LACKS api.threads.read (token_lacks_scope: re-authorise" in rows["threads"]
    assert "LACKS vector_store.read" in rows["vector_stores"]
    assert_nothing_of_the_token(token, claims, result.stdout, result.stderr)


def test_a_token_without_a_scope_is_told_to_reauthorise_and_one_with_it_is_not(tmp_path):
    claims = identity(scp=[*GRANT, "vector_store.read", "api.responses.read", "api.fine_tuning.jobs.read"])
    token = make_jwt(claims)
    out = tmp_path / "doctor.jsonl"
    with FakeOpenAI() as fake:  # the fake holds a token to what its claims list
        fake.deny(Identity(claims["sub"], claims["iss"], claims["azp"]), "proj_strict", ["api.files.read"])
        result = run_doctor_cli("--out", str(out), "--project", "proj_strict", key=token, base_url=fake.base_url)
        assert fake.count(status=401, template=THREADS_TEMPLATE) == 1
    assert result.returncode == X.FOUND, result.stdout + result.stderr
    text = result.stdout
    assert ("MISSING threads: api.threads.read on every attempt with a verdict (1): the token's own claims do not "
            "grant api.threads.read (token_lacks_scope): re-authorise, requesting it") in text
    errors = {s.attributes[A.TEMPLATE]: s.attributes for s in read_spans([out]) if s.attributes.get(A.SCOPE_ERROR)}
    assert set(errors) == {"/v1" + THREADS_TEMPLATE, "/v1/files"}
    assert errors["/v1/files"][A.KEY_FINGERPRINT] == describe(token).fingerprint
    assert ("MISSING files: api.files.read on every attempt with a verdict (1): the token's own claims grant it, so "
            "re-authorising will not help") in text
    assert_nothing_of_the_token(token, claims, result.stdout, result.stderr, out.read_text())


def test_a_token_listing_no_scopes_leaves_it_to_the_server():
    claims = identity()
    token = make_jwt(claims)
    with FakeOpenAI() as fake:
        fake.grant_identity(Identity(claims["sub"], claims["iss"], claims["azp"]))
        result = run_doctor_cli(key=token, base_url=fake.base_url)
    assert result.returncode == X.OK, result.stdout + result.stderr
    assert "Its claims list no scopes the instrumentation can use: only the server can tell" in result.stdout
    assert "The token's own grant" not in result.stdout
    assert_nothing_of_the_token(token, claims, result.stdout, result.stderr)


def test_a_key_has_no_token_section():
    with FakeOpenAI() as fake:
        fake.grant(KEY)
        result = run_doctor_cli(base_url=fake.base_url)
    assert result.returncode == 0 and "Token, read locally" not in result.stdout
