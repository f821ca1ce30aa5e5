"""`otelcol validate` of the real v0.161.0 build on every shipped config and every documented combination,
with the environment variables collector-config/README.md documents; the built binaries are what the
configs and docs say (component list, Jaeger v2). Binaries: tests/stack.py (missing -> skip, CI -> fail).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import collector_helpers as h
import pytest
import yaml

from tests.support import stack

#: Every combination the README documents, with the variables it needs.
REQUIRED = {"MAIN_OTLP_ENDPOINT": "main.example.com:4317", "ANOMALY_OTLP_ENDPOINT": "audit.example.com:4317",
            "HONEYCOMB_API_KEY": "hcaik_test"}
COMBINATIONS = [(n,) for n in h.STANDALONE] + [(b, o) for b in h.OVERLAY_BASES for o in h.OVERLAYS]
IDS = ["+".join(c) for c in COMBINATIONS]
#: Each optional variable of the README's table, set to a documented non-default value.
OPTIONAL = {
    "OTLP_INSECURE": "true", "OTLP_COMPRESSION": "zstd", "ANOMALY_LOG_VERBOSITY": "basic",
    "JAEGER_OTLP_ENDPOINT": "jaeger.internal:4317", "PROMETHEUS_EXPORTER_ENDPOINT": "127.0.0.1:9464",
    "HONEYCOMB_OTLP_ENDPOINT": "api.eu1.honeycomb.io:443", "HONEYCOMB_METRICS_DATASET": "scopes",
    "GATEWAY_HEADLESS_HOSTNAME": "gw-headless.obs.svc.cluster.local",
    "GATEWAY_OTLP_ENDPOINT": "gw.obs.svc.cluster.local:4317", "GATEWAY_TLS_INSECURE": "false",
    "TRACE_SAMPLING_PERCENTAGE": "25", "ANOMALY_QUEUE_DIR": "/tmp/otel-openai-scopes-validate-queue",
    "DERIVED_MAX_SERIES": "500",
}


@pytest.fixture(scope="module")
def bins() -> stack.Binaries:
    return stack.require_binaries("otelcol")


def _ok(out: subprocess.CompletedProcess) -> bool:
    return out.returncode == 0 and "Error" not in out.stdout + out.stderr


def test_every_documented_variable_is_covered():
    readme = (h.CONFIG_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)`", readme, re.M)) | set(re.findall(r"`, `([A-Z_]+)` \|", readme))
    used = set().union(*(h.env_vars(h.load_config(n)) for n in h.STANDALONE + h.OVERLAYS))
    assert used <= documented, used - documented
    untested = used - set(REQUIRED) - set(OPTIONAL)
    assert not untested, f"give {sorted(untested)} a documented non-default value in OPTIONAL"


@pytest.mark.parametrize("names", COMBINATIONS, ids=IDS)
def test_validate_with_required_variables(bins, names):
    out = stack.Collector.validate(bins, names, REQUIRED)
    assert _ok(out), out.stdout + out.stderr


@pytest.mark.parametrize("names", COMBINATIONS, ids=IDS)
def test_validate_with_every_optional_variable_set(bins, names):
    out = stack.Collector.validate(bins, names, {**REQUIRED, **OPTIONAL})
    assert _ok(out), out.stdout + out.stderr


@pytest.mark.parametrize("names", [("base.yaml", "jaeger.yaml"), ("gateway.yaml", "jaeger.yaml"), ("agent.yaml",)],
                         ids=["base+jaeger", "gateway+jaeger", "agent"])
def test_validate_with_the_loopback_overlay_the_stack_uses(bins, names):
    env = {**REQUIRED, **stack.loopback_env(14317, 14318, 13133, 18888)}
    out = stack.Collector.validate(bins, [*list(names), stack.LOOPBACK_OVERLAY], env)
    assert _ok(out), out.stdout + out.stderr


@pytest.mark.parametrize("manifest", ["agent-collector.yaml", "agent-collector-prometheus.yaml",
                                      "gateway-collector-otlp.yaml", "gateway-collector-jaeger.yaml"])
def test_validate_the_config_embedded_in_each_operator_manifest(bins, tmp_path, manifest):
    """The Operator itself is not run here (structural only); the config it would hand the Collector is."""
    cr = h.load_yaml(h.K8S_DIR / manifest)
    path = tmp_path / "embedded.yaml"
    path.write_text(yaml.safe_dump(cr["spec"]["config"]))
    env = {**REQUIRED, **{e["name"]: e["value"] for e in cr["spec"].get("env") or [] if "value" in e}}
    out = stack.Collector.validate(bins, [path], env)
    assert _ok(out), out.stdout + out.stderr


@pytest.mark.parametrize("mutation,needle", [
    # the two faults issue 8 found by reading the sources, now rejected by the real binary
    (lambda c: c["exporters"]["load_balancing/traces"]["resolver"]["dns"].update(port=4317),
     "expected type 'string'"),
    # the routing connector is not in the v0.161.0 build
    (lambda c: c.update(connectors={"routing/x": {"table": []}}), 'unknown type: "routing"'),
    (lambda c: c["exporters"]["otlp_grpc/gateway"].update(compression="bogus"), "compression"),
], ids=["dns-port-int", "routing-connector", "bad-compression"])
def test_validate_rejects_known_mistakes(bins, tmp_path, mutation, needle):
    """validate is not vacuous: each mutation of agent.yaml is refused with the expected reason."""
    cfg = h.load_config("agent.yaml")
    mutation(cfg)
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = stack.Collector.validate(bins, [path], REQUIRED)
    assert out.returncode != 0 or "Error" in out.stdout + out.stderr
    assert needle in out.stdout + out.stderr


def test_validate_fails_without_a_required_variable(bins):
    out = stack.Collector.validate(bins, ["base.yaml"], {})
    assert not _ok(out) and 'requires a non-empty "endpoint"' in out.stdout + out.stderr


def test_built_collector_lists_exactly_the_vendored_components(bins):
    out = subprocess.run([str(bins.otelcol), "components"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["buildinfo"]["version"] == h.TARGET_VERSION
    doc.pop("buildinfo")
    doc.pop("providers", None)
    assert doc == h.load_yaml(h.DIST_COMPONENTS), "run: bash scripts/stack.sh components > " + str(h.DIST_COMPONENTS)


def test_jaeger_binary_is_the_v2_line():
    """Jaeger v2 is a Collector build: its component list has the jaeger_storage and jaeger_query extensions
    and the jaeger_storage_exporter; v1 binaries have no `components` command at all."""
    bins = stack.require_binaries("jaeger")
    out = subprocess.run([str(bins.jaeger), "components"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert {"jaeger_storage", "jaeger_query"} <= {e["name"] for e in doc["extensions"]}
    assert "jaeger_storage_exporter" in {e["name"] for e in doc["exporters"]}
    assert {"otlp"} <= {r["name"] for r in doc["receivers"]}
    go = shutil.which("go")
    if go:  # the build info names the module version: v1.75.0 is Jaeger 2.12.0 (its CHANGELOG: "v1.75.0 / v2.12.0")
        info = subprocess.run([go, "version", "-m", str(bins.jaeger)], capture_output=True, text=True, timeout=60)
        assert re.search(r"^\s+mod\s+github\.com/jaegertracing/jaeger\s+v" + re.escape(stack.JAEGER_VERSION) + r"\s",
                         info.stdout, re.M), info.stdout[:500]


def test_prometheus_is_the_tested_release():
    bins = stack.require_binaries("prometheus")
    out = subprocess.run([str(bins.prometheus), "--version"], capture_output=True, text=True, timeout=60)
    assert re.search(r"prometheus, version 2\.42\.", out.stdout + out.stderr), out.stdout + out.stderr


def test_missing_binary_fails_under_ci_and_skips_locally(monkeypatch, tmp_path):
    """The harness never silently skips in CI: with no cache and no override, CI=true turns a skip into a failure."""
    monkeypatch.setenv("OTEL_OPENAI_SCOPES_CACHE", str(tmp_path / "empty-cache"))
    for name in ("OTELCOL", "JAEGER", "PROMETHEUS"):
        monkeypatch.delenv(f"OTEL_OPENAI_SCOPES_{name}", raising=False)
    monkeypatch.setenv("CI", "true")
    assert stack.find_binaries().otelcol is None, "prebuilt binaries must be ignored under CI"
    with pytest.raises(pytest.fail.Exception, match=r"scripts/stack\.sh build.*CI is set"):
        stack.require_binaries("otelcol")
    monkeypatch.delenv("CI")
    monkeypatch.setattr(Path, "home", lambda: tmp_path)  # no prebuilt dir either
    with pytest.raises(pytest.skip.Exception, match=r"scripts/stack\.sh build"):
        stack.require_binaries("otelcol", "jaeger")
