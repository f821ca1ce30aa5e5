"""scripts/stack.sh and `scripts/demo.sh --stack` for real: up prints the four endpoint lines and they answer,
an app pointed at the printed gRPC endpoint as printed (the README's "send your own app to the local stack")
reaches Jaeger and Prometheus, status repeats them, down stops exactly the recorded pids (and not a stranger whose
pid was planted in the state), build with a warm cache rebuilds nothing, the demo prints the alert delays it
measured. State lives in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.support import stack

SCRIPT = stack.ROOT / "scripts" / "stack.sh"
LINES = ("OTLP_GRPC_ENDPOINT", "OTLP_HTTP_ENDPOINT", "JAEGER_URL", "PROMETHEUS_URL")


@pytest.fixture
def state(tmp_path):
    bins = stack.require_binaries()
    if bins.otelcol != stack.cached_otelcol() or bins.jaeger != stack.cached_jaeger():
        if os.environ.get("CI"):
            pytest.fail("CI: scripts/stack.sh build must have filled the stack cache")
        pytest.skip("binaries are not the ones in the stack cache: run `bash scripts/stack.sh build`")
    env = dict(os.environ, OTEL_OPENAI_SCOPES_STATE=str(tmp_path / "state"))
    yield env
    subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=60)


def run(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def endpoints(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))


def test_build_with_a_warm_cache_builds_nothing(state):
    out = run(state, "build")
    assert out.returncode == 0, out.stderr
    assert "Collector: cached" in out.stdout and "Jaeger: cached" in out.stdout
    paths = endpoints(out.stdout)
    assert paths["OTELCOL"] == str(stack.cached_otelcol()) and paths["JAEGER"] == str(stack.cached_jaeger())


def test_up_status_down(state, tmp_path):
    up = run(state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    ep = endpoints(up.stdout)
    assert tuple(ep) == LINES
    # every line a URL with its scheme: OTEL_EXPORTER_OTLP_ENDPOINT takes the gRPC one as printed (plaintext)
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", ep[k]) for k in LINES)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=" + ep["OTLP_GRPC_ENDPOINT"] in up.stderr
    assert "OTEL_METRIC_EXPORT_INTERVAL=10000" in up.stderr
    assert stack.http_get(ep["PROMETHEUS_URL"] + "/-/ready")
    assert json.loads(stack.http_get(ep["JAEGER_URL"] + "/api/services"))["errors"] is None
    rules = json.loads(stack.http_get(ep["PROMETHEUS_URL"] + "/api/v1/rules"))["data"]["groups"]
    assert sorted(g["name"] for g in rules) == ["openai-scope-errors", "openai-scope-verdicts"]
    assert {g["name"]: g["interval"] for g in rules} == {"openai-scope-verdicts": 10, "openai-scope-errors": 60}
    config = json.loads(stack.http_get(ep["PROMETHEUS_URL"] + "/api/v1/status/config"))["data"]["yaml"]
    assert "scrape_interval: 10s" in config
    assert f"openai_scopes_runbook_url: file://{stack.CONFIG_DIR}/alerts/RUNBOOK.md" in config
    # Prometheus scrapes the Collector (both jobs up)
    up_query = ep["PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": "up == 1"})
    stack.wait_until(lambda: len(json.loads(stack.http_get(up_query))["data"]["result"]) == 2,
                     timeout=30, what="both scrape targets up")

    status = run(state, "status")
    assert status.returncode == 0 and endpoints(status.stdout) == ep
    again = run(state, "up")
    assert again.returncode == 0 and endpoints(again.stdout) == ep, "a second up reuses the running stack"

    state_dir = tmp_path / "state"
    pids = {n: int((state_dir / f"{n}.pid").read_text()) for n in ("jaeger", "otelcol", "prometheus")}
    # a stranger (not ours) whose pid is planted in the state: down must leave it alone
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        down = run(state, "down")
        assert down.returncode == 0, down.stderr
        for name, pid in pids.items():
            assert f"stopped {name} (pid {pid})" in down.stdout
            proc_status = Path(f"/proc/{pid}/status")
            assert not proc_status.exists() or "zombie" in proc_status.read_text().lower()
        assert run(state, "status").returncode == 1
        (state_dir / "otelcol.pid").write_text(str(stranger.pid))
        (state_dir / "otelcol.pid.exe").write_text(str(stack.cached_otelcol()))
        run(state, "down")
        assert stranger.poll() is None, "down killed a process it did not start"
    finally:
        stranger.kill()
        stranger.wait()


def test_demo_through_the_stack_prints_urls_that_find_its_scope_errors(state, tmp_path):
    demo = subprocess.run(["bash", str(stack.ROOT / "scripts" / "demo.sh"), "--stack", "--time-scale", "1",
                           "--out", str(tmp_path / "telemetry.jsonl"), "--html", ""],
                          env=state, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    search = re.search(r"(http://127\.0\.0\.1:\d+)/search\?service=openai-scopes-demo&tags=(\S+)", demo.stdout)
    api = re.search(r"^  (http://127\.0\.0\.1:\d+/api/traces\?\S+)$", demo.stdout, re.M)
    errors = re.search(r"(\d+) missing-scope errors", demo.stdout)
    alerts = re.search(r"(http://127\.0\.0\.1:\d+)/alerts", demo.stdout)
    assert search and api and alerts and errors, demo.stdout[-2000:]
    assert json.loads(urllib.parse.unquote(search.group(2))) == {"openai.scope_error": "true"}

    def scope_error_spans() -> int:
        traces = json.loads(stack.http_get(api.group(1)))["data"] or []
        return sum(1 for t in traces for s in t["spans"]
                   if {"key": "openai.scope_error", "type": "bool", "value": True} in s["tags"])

    # every scope error the demo reports is found by the printed search, and nothing else
    want = int(errors.group(1))
    assert want > 0
    stack.wait_until(lambda: scope_error_spans() == want, timeout=30, what=f"{want} demo scope errors in Jaeger")
    assert json.loads(stack.http_get(alerts.group(1) + "/api/v1/alerts"))["status"] == "success"
    # it prints what it measured, not a promise
    assert re.search(r"OpenAIScopeErrorClientMutated: firing \d+ s after the first matching scope error \(measured\)",
                     demo.stdout), demo.stdout[-2000:]
    assert "within about a minute" not in demo.stdout


APP = """
import openai, sys
client = openai.OpenAI(api_key=sys.argv[2], base_url=sys.argv[1], max_retries=0)
for _ in range(3):
    client.models.list()
try:
    client.beta.threads.runs.list("thread_own_app")
except openai.APIStatusError as exc:
    print("scope error", exc.status_code)
"""


def test_an_app_pointed_at_the_printed_endpoint_as_printed_reaches_jaeger_and_prometheus(state, tmp_path):
    """The README's "send your own app to the local stack": the environment `up` prints, taken as printed, with
    `opentelemetry-instrument` and nothing else configured in the app."""
    from otel_openai_scopes.fingerprint import fingerprint
    from otel_openai_scopes.tools.fake_server import FakeOpenAI
    from tests.support.keys import make_key

    up = run(state, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    ep = endpoints(up.stdout)
    exports = re.search(r"export (OTEL_EXPORTER_OTLP_ENDPOINT=\S+ OTEL_EXPORTER_OTLP_PROTOCOL=\S+) \\\n\s+"
                        r"(OTEL_METRIC_EXPORT_INTERVAL=\S+) OTEL_SERVICE_NAME=\S+", up.stderr)
    command = re.search(r"^  (opentelemetry-instrument .*) python app\.py$", up.stderr, re.M)
    assert exports and command, up.stderr
    printed = dict(kv.split("=", 1) for kv in " ".join(exports.groups()).split())
    assert printed["OTEL_EXPORTER_OTLP_ENDPOINT"] == ep["OTLP_GRPC_ENDPOINT"]
    key = make_key()
    (tmp_path / "app.py").write_text(APP)
    env = {k: v for k, v in state.items() if not k.startswith("OTEL_")}
    env.update(printed, OTEL_SERVICE_NAME="own-app", OTEL_RESOURCE_ATTRIBUTES="service.instance.id=own-1")
    bindir = Path(sys.executable).parent
    with FakeOpenAI() as fake:
        fake.grant(key, scopes=("api.model.read", "model.read"))
        argv = [str(bindir / command.group(1).split()[0]), *command.group(1).split()[1:],
                sys.executable, str(tmp_path / "app.py"), fake.base_url, key]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and "scope error 401" in out.stdout, out.stdout + out.stderr
    assert "handshake" not in out.stderr.lower() and "Failed to export" not in out.stderr, out.stderr
    jaeger = ep["JAEGER_URL"] + "/api/traces?" + urllib.parse.urlencode(
        {"service": "own-app", "tags": json.dumps({"openai.scope_error": "true"}), "limit": "100"})
    stack.wait_until(lambda: json.loads(stack.http_get(jaeger))["data"], timeout=60,
                     what="the app's scope error in Jaeger")
    query = ep["PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode(
        {"query": f'openai_client_scope_errors_total{{job="own-app",openai_key_fingerprint="{fingerprint(key)}"}}'})
    stack.wait_until(lambda: json.loads(stack.http_get(query))["data"]["result"], timeout=60,
                     what="the app's scope-error counter in Prometheus")
