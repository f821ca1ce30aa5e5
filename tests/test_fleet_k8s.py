"""The Kubernetes path (issue 14): one gateway manifest per backend overlay, both agent forms, the Secret keys,
metrics that reach Prometheus, a PrometheusRule, scrape examples and the app environment, all rendered by
collector-config/k8s/render.py and the embedded configs validated by the real Collector binary (`otelcol validate`).
The Operator, the Prometheus Operator and a cluster never run here: their objects are checked structurally."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import fleet_helpers as fh
import pytest
import yaml

from tests.support import stack

K8S = stack.CONFIG_DIR / "k8s"
OVERLAYS = ("jaeger", "honeycomb", "otlp")
# Values a user puts in the Secret (the examples hold placeholders).
SAMPLE = {"JAEGER_OTLP_ENDPOINT": "jaeger-collector.tracing:4317", "HONEYCOMB_API_KEY": "hcaik_example",
          "MAIN_OTLP_ENDPOINT": "tempo.tracing:4317", "ANOMALY_OTLP_ENDPOINT": "audit.tracing:4317"}


def _render_module():
    spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def test_committed_manifests_are_what_render_py_writes():
    out = subprocess.run([sys.executable, str(K8S / "render.py"), "--check"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert set(_render_module().render()) == {p.name for p in K8S.glob("*.yaml")} - {"agent-prometheus.yaml"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_manifest_per_overlay_validates_on_the_real_collector(tmp_path, overlay):
    bins = stack.require_binaries("otelcol")
    render = _render_module()
    cr = _load(f"gateway-collector-{overlay}.yaml")
    assert cr["kind"] == "OpenTelemetryCollector" and cr["spec"]["envFrom"] == [{"secretRef": {"name": render.SECRET}}]
    assert cr["spec"]["config"] == render.merge(yaml.safe_load((stack.CONFIG_DIR / "gateway.yaml").read_text()),
                                                yaml.safe_load((stack.CONFIG_DIR / f"{overlay}.yaml").read_text()))
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(cr["spec"]["config"]))
    env = {k: SAMPLE[k] for k, required, _ in render.SECRET_KEYS[overlay] if required}
    out = stack.Collector.validate(bins, [cfg], env)
    assert out.returncode == 0, out.stdout + out.stderr
    # The Secret example names exactly the keys the config reads (required ones as placeholders).
    secret = yaml.safe_load((K8S / f"secret-{overlay}.example.yaml").read_text())
    assert secret["metadata"]["name"] == render.SECRET and set(secret["stringData"]) == set(env)
    text = (K8S / f"secret-{overlay}.example.yaml").read_text()
    for key, _, _ in render.SECRET_KEYS[overlay]:
        assert key in text and "${env:" + key in yaml.safe_dump(cr["spec"]["config"])
    # Metrics reach Prometheus with jaeger and otlp (scraped on prom-metrics), Honeycomb takes them itself.
    pipelines = cr["spec"]["config"]["service"]["pipelines"]
    if overlay in render.PROMETHEUS_OVERLAYS:
        assert pipelines["metrics/scope_errors"]["exporters"] == ["prometheus"]
        assert {"name": "prom-metrics", "port": render.PROM_PORT} in cr["spec"]["ports"]
    else:
        assert pipelines["metrics/scope_errors"]["exporters"] == ["otlp_grpc/honeycomb_metrics"]


@pytest.mark.parametrize("name,prometheus", [("agent-collector.yaml", False),
                                             ("agent-collector-prometheus.yaml", True)])
def test_agent_manifests_validate_and_expose_app_metrics_where_prometheus_scrapes(tmp_path, name, prometheus):
    bins = stack.require_binaries("otelcol")
    cr = _load(name)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump(cr["spec"]["config"]))
    out = stack.Collector.validate(bins, [cfg])
    assert out.returncode == 0, out.stdout + out.stderr
    metrics = cr["spec"]["config"]["service"]["pipelines"]["metrics"]["exporters"]
    if prometheus:
        # one target per app series: the node's agent (contrib image: otelcol-k8s has no prometheus exporter)
        assert metrics == ["prometheus"] and "collector-contrib" in cr["spec"]["image"]
        assert any(p["name"] == "prom-metrics" for p in cr["spec"]["ports"])
    else:
        # each series to one gateway replica, hashed by stream (otelcol-k8s has the load_balancing exporter)
        assert metrics == ["load_balancing/metrics"] and "collector-k8s" in cr["spec"]["image"]


def test_prometheus_rule_scrape_examples_and_app_environment(tmp_path):
    promtool = fh.require_promtool()
    rule = _load("prometheus-rule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(fh.RULES.read_text())["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    # --runbook-url writes the link into the rules instead of the external label
    out = subprocess.run([sys.executable, str(K8S / "render.py"), "--runbook-url", "https://wiki.example/RUNBOOK.md",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rendered = yaml.safe_load((tmp_path / "r" / "prometheus-rule.yaml").read_text())
    urls = {r["annotations"]["runbook_url"] for g in rendered["spec"]["groups"] for r in g["rules"]}
    assert urls and all(u.startswith("https://wiki.example/RUNBOOK.md#openaiscope") for u in urls)
    bad = subprocess.run([sys.executable, str(K8S / "render.py"), "--runbook-url", "RUNBOOK.md", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "URL" in bad.stderr
    # scrape: every 10 s, honor_labels, the runbook label; a valid Prometheus config with the rules
    monitor = _load("podmonitor.yaml")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint == {"port": "prom-metrics", "interval": "10s", "honorLabels": True}
    scrape = _load("prometheus-scrape.example.yaml")
    assert scrape["global"]["scrape_interval"] == "10s" and scrape["scrape_configs"][0]["honor_labels"] is True
    assert scrape["global"]["external_labels"]["openai_scopes_runbook_url"].startswith("https://")
    scrape["rule_files"] = [str(fh.RULES)]
    # Debian's Prometheus is built without Kubernetes service discovery: check the rest of the job with a static
    # target in its place (the kubernetes_sd_configs block itself is structural only here).
    job = scrape["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["observability"]}}]
    job["static_configs"] = [{"targets": ["127.0.0.1:8889"]}]
    del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(scrape))
    check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    # the app: the node's agent over plaintext gRPC, a 10 s metric export, its own instance id
    env = {e["name"]: e.get("value") for e in _load("app-environment.example.yaml")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://$(HOST_IP):4317"
    assert env["OTEL_METRIC_EXPORT_INTERVAL"] == "10000"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "service.instance.id=$(POD_NAME)"


def test_readme_checklist_names_every_manifest_in_order():
    text = (stack.CONFIG_DIR / "README.md").read_text()
    section = text[text.index("### Kubernetes, step by step"):]
    section = section[:section.index("\n## ")]
    order = ["namespace.yaml", "secret-", "gateway-collector-", "agent-collector", "app-environment.example.yaml",
             "prometheus-rule.yaml"]
    positions = [section.index(n) for n in order]
    assert positions == sorted(positions), "checklist order: operator, namespace, secret, gateway, agent, apps, rules"
    assert "OpenTelemetry Operator" in section[:positions[0]]
    for name in _render_module().render():
        assert name in section, name


def test_honeycomb_triggers_for_the_verdicts_are_structurally_valid():
    """Honeycomb is out of reach here: the request bodies are checked against the documented fields only."""
    import json

    for name, diagnosis in (("trigger-platform-side.json", "scope_flapping"),
                            ("trigger-context-mismatch.json", "context_mismatch")):
        body = json.loads((stack.CONFIG_DIR / "alerts" / "honeycomb" / name).read_text())
        assert set(body) <= {"name", "description", "tags", "query", "frequency", "threshold", "alert_type",
                             "disabled", "recipients"}
        q = body["query"]
        assert {"column": "openai.scope_error.diagnosis", "op": "=", "value": diagnosis} in q["filters"]
        for col in ("service.name", "openai.key.fingerprint", "openai.key.hint", "openai.organization",
                    "openai.project", "server.address", "http.request.method", "url.template"):
            assert col in q["breakdowns"], col
        assert body["frequency"] == 60 and q["time_range"] >= body["frequency"]
        assert body["threshold"] == {"op": ">", "value": 0, "exceeded_limit": 1}
        assert "RUNBOOK.md#" in body["description"]
