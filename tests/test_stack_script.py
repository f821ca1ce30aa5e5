"""scripts/stack.sh and `scripts/demo.sh --stack` for real: up prints the four endpoint lines and they answer,
status repeats them, down stops exactly the recorded pids (and not a stranger whose pid was planted in the
state), build with a warm cache rebuilds nothing. State lives in a temporary directory.
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
import stack

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
    assert re.fullmatch(r"127\.0\.0\.1:\d+", ep["OTLP_GRPC_ENDPOINT"])
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", ep[k]) for k in LINES[1:])
    assert stack.http_get(ep["PROMETHEUS_URL"] + "/-/ready")
    assert json.loads(stack.http_get(ep["JAEGER_URL"] + "/api/services"))["errors"] is None
    rules = json.loads(stack.http_get(ep["PROMETHEUS_URL"] + "/api/v1/rules"))["data"]["groups"]
    assert rules and rules[0]["name"] == "openai-scope-errors"
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
    demo = subprocess.run(["bash", str(stack.ROOT / "scripts" / "demo.sh"), "--stack", "--time-scale", "0.6",
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
