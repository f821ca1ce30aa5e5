"""Tests for collector-config/: collector configs (alone and merged with the backend overlays), alert
rules (promtool), Honeycomb triggers/SLO, the local compose stack and the Kubernetes manifests.

Names come from otel_openai_scopes.attributes (the telemetry contract) via tests/collector_helpers.py.
External tools: promtool (required when CI is set). The real Collector, Jaeger and Prometheus runs
(`otelcol validate`, end to end) are in tests/test_stack*.py.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import json
import os
import random
import re
import shutil
import string
import subprocess
from pathlib import Path

import collector_helpers as h
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as hs

from otel_openai_scopes import attributes as contract
from otel_openai_scopes import verdicts

IN_CI = bool(os.environ.get("CI"))

MERGES = [(b, o) for b in h.OVERLAY_BASES for o in h.OVERLAYS]
RUNNABLE = [(name,) for name in h.STANDALONE] + MERGES
RUNNABLE_IDS = ["+".join(c) for c in RUNNABLE]
# Configs that route, count and export scope errors themselves (the agent only forwards).
PROCESSING = [c for c in RUNNABLE if c[0] != "agent.yaml"]
PROCESSING_IDS = ["+".join(c) for c in PROCESSING]


def runnable(names: tuple[str, ...]) -> dict:
    return h.merged(*names)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not on PATH"
    if IN_CI:
        pytest.fail(f"{message}, but CI is set: .ci/run must install it (apt-get install -y prometheus)")
    pytest.skip(f"{message}; install Debian's 'prometheus' package to run this locally (CI requires it)")


# ---------------------------------------------------------------------------------------------------
# Parsing, merging, manifests
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", h.STANDALONE + h.OVERLAYS)
def test_every_config_parses_to_a_mapping(name):
    cfg = h.load_config(name)
    assert isinstance(cfg, dict) and cfg
    assert set(cfg) <= {"receivers", "processors", "exporters", "connectors", "extensions", "service"}


def test_merge_follows_confmap_semantics():
    base = {"a": {"b": 1, "c": [1, 2]}, "l": [1], "s": "x"}
    over = {"a": {"c": [3], "d": 4}, "l": [2, 3]}
    assert h.merge(base, over) == {"a": {"b": 1, "c": [3], "d": 4}, "l": [2, 3], "s": "x"}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "l": [1], "s": "x"}, "merge must not mutate its inputs"


@pytest.mark.parametrize("base,overlay", MERGES, ids=["+".join(m) for m in MERGES])
def test_overlays_only_replace_exporter_lists(base, overlay):
    """Lists are replaced on merge: an overlay restating processors or receivers could silently drop
    memory_limiter or redaction, so overlays may restate exporters lists only, and only of pipelines
    that exist in the config they are applied to."""
    ov = h.load_config(overlay)
    b = h.load_config(base)
    for pid, p in (ov.get("service", {}).get("pipelines") or {}).items():
        assert pid in b["service"]["pipelines"], f"{overlay} adds pipeline {pid} unknown to {base}"
        assert set(p) == {"exporters"}, f"{overlay} restates {sorted(p)} of {pid}"
    m = h.merged(base, overlay)
    for pid, p in b["service"]["pipelines"].items():
        assert m["service"]["pipelines"][pid]["processors"] == p.get("processors")
        assert m["service"]["pipelines"][pid]["receivers"] == p["receivers"]


def test_manifest_lookup_finds_known_types_and_rejects_others():
    mods = h.manifest_modules(h.CONTRIB_MANIFEST)
    for cls, ctype in [
        ("receivers", "otlp"), ("exporters", "otlp_grpc"), ("exporters", "otlp_http"),
        ("exporters", "load_balancing"), ("exporters", "debug"), ("exporters", "prometheus"),
        ("connectors", "routing"), ("connectors", "signal_to_metrics"), ("connectors", "span_metrics"),
        ("connectors", "forward"), ("processors", "memory_limiter"), ("processors", "tail_sampling"),
        ("processors", "deltatocumulative"), ("processors", "redaction"), ("processors", "transform"),
        ("extensions", "health_check"), ("extensions", "file_storage"),
    ]:
        assert h.type_in_manifest(mods, cls, ctype), (cls, ctype)
    for cls, ctype in [
        ("processors", "routing"), ("exporters", "routing"), ("exporters", "jaeger"),
        ("processors", "span_metrics"), ("connectors", "tail_sampling"), ("exporters", "otlp_grpcx"),
    ]:
        assert not h.type_in_manifest(mods, cls, ctype), (cls, ctype)
    k8s = h.manifest_modules(h.K8S_MANIFEST)
    assert not h.type_in_manifest(k8s, "connectors", "signal_to_metrics")
    assert h.type_in_manifest(k8s, "exporters", "load_balancing")


@pytest.mark.parametrize("names", RUNNABLE + [(o,) for o in h.OVERLAYS], ids=RUNNABLE_IDS + list(h.OVERLAYS))
def test_component_types_exist_in_the_tested_distribution_and_are_current(names):
    types = h.distribution_types()
    cfg = h.merged(*names)
    for cls, cid in h.used_components(cfg):
        ctype = h.component_type(cid)
        assert ctype in types[cls], \
            f"{cls[:-1]} type {ctype!r} ({cid}) not in otelcol-openai-scopes v{h.TARGET_VERSION}"
        assert (cls, ctype) not in h.FORBIDDEN_TYPES, f"{cid}: deprecated or removed component type"


def test_distribution_component_list_matches_the_builder_config():
    """The vendored component list and builder-config.yaml name the same modules, all at the tested release."""
    builder = h.load_yaml(h.CONFIG_DIR / "builder-config.yaml")
    listed = h.load_yaml(h.DIST_COMPONENTS)
    for cls in h.CLASSES:
        want = sorted(e["gomod"] for e in builder.get(cls) or [])
        assert sorted(c["module"] for c in listed.get(cls) or []) == want, cls
        assert all(m.endswith(" v" + h.TARGET_VERSION) for m in want), cls
    assert builder["dist"]["version"] == h.TARGET_VERSION
    assert "routing" not in h.distribution_types()["connectors"]


@pytest.mark.parametrize("names", RUNNABLE, ids=RUNNABLE_IDS)
def test_component_types_exist_in_official_distributions(names):
    """Users run otelcol-contrib: every type must exist there too (v0.159.0 manifest, the newest offline)."""
    mods = h.manifest_modules(h.CONTRIB_MANIFEST)
    for cls, cid in h.used_components(h.merged(*names)):
        assert h.type_in_manifest(mods, cls, h.component_type(cid)), cid


def test_agent_runs_on_the_k8s_distribution_and_gateway_needs_contrib():
    k8s = h.manifest_modules(h.K8S_MANIFEST)
    agent = h.load_config("agent.yaml")
    missing = [cid for cls, cid in h.used_components(agent) if not h.type_in_manifest(k8s, cls, h.component_type(cid))]
    assert missing == []
    gateway = h.load_config("gateway.yaml")
    needs_contrib = {cid for cls, cid in h.used_components(gateway)
                     if not h.type_in_manifest(k8s, cls, h.component_type(cid))}
    assert needs_contrib == {"signal_to_metrics/scope_errors"}
    assert "otelcol-k8s" in (h.CONFIG_DIR / "README.md").read_text()


# ---------------------------------------------------------------------------------------------------
# Pipeline wiring
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", RUNNABLE, ids=RUNNABLE_IDS)
def test_pipelines_are_wired(names):
    assert h.wiring_problems(runnable(names)) == []


def _broken(mutate) -> list[str]:
    cfg = h.load_config("base.yaml")
    mutate(cfg)
    return h.wiring_problems(cfg)


def test_wiring_checker_catches_mistakes():
    pipes = lambda c: c["service"]["pipelines"]  # noqa: E731
    assert any("memory_limiter is not the first" in p for p in _broken(
        lambda c: pipes(c)["traces"].update(processors=["redaction/openai", "memory_limiter"])))
    assert any("is a receiver in no pipeline" in p for p in _broken(
        lambda c: pipes(c).pop("traces/scope_errors")))
    assert any("not defined" in p for p in _broken(
        lambda c: pipes(c)["metrics"]["exporters"].append("otlp_grpc/nowhere")))
    assert "traces: receiver otlp/nowhere is not defined" in _broken(
        lambda c: pipes(c)["traces"]["receivers"].append("otlp/nowhere"))
    assert "traces: processor batch/nowhere is not defined" in _broken(
        lambda c: pipes(c)["traces"]["processors"].append("batch/nowhere"))
    assert any("defined but used in no pipeline" in p for p in _broken(
        lambda c: c["exporters"].update({"otlp_grpc/spare": {"endpoint": "x:4317"}})))
    assert any("without a redaction processor" in p for p in _broken(
        lambda c: pipes(c)["traces"].update(processors=["memory_limiter"])))
    assert any("fans out before redaction" in p for p in _broken(
        lambda c: pipes(c)["traces"].update(processors=["memory_limiter", "transform/scrub"])))
    assert any("not a supported signal pair" in p for p in _broken(
        lambda c: (pipes(c).pop("traces/scope_errors"),
                   pipes(c).update({"metrics/bad": {
                       "receivers": ["forward/scope_errors"],
                       "exporters": ["debug/anomalies", "signal_to_metrics/scope_errors"]}}))))
    assert any("feeds ['forward/scope_errors'] without a redaction processor" in p for p in _broken(
        lambda c: pipes(c)["traces"].update(processors=["memory_limiter", "transform/scrub"])))
    assert any("not enabled" in p for p in _broken(lambda c: c["service"].update(extensions=[])))


@pytest.mark.parametrize("names", PROCESSING, ids=PROCESSING_IDS)
def test_scope_errors_are_split_after_redaction_filtered_and_counted(names):
    """forward/scope_errors copies every scrubbed span into the anomaly pipeline, whose filter keeps only
    openai.scope_error == true (filter conditions DROP: hence the "not"). The routing connector that did
    this in one step is not published for v0.161.0. tests/test_stack.py measures it on the real binary."""
    cfg = runnable(names)
    pipelines = cfg["service"]["pipelines"]
    assert not any(h.component_type(c) == "routing" for c in cfg["connectors"])
    feeders = [pid for pid, p in pipelines.items() if "forward/scope_errors" in p["exporters"]]
    assert feeders and all(h.component_type(pipelines[f]["processors"][-1]) == "redaction" for f in feeders)
    (anomalies,) = [pid for pid, p in pipelines.items() if "forward/scope_errors" in p["receivers"]]
    assert pipelines[anomalies]["receivers"] == ["forward/scope_errors"]
    assert pipelines[anomalies]["processors"][:2] == ["memory_limiter", "filter/scope_errors"], \
        "filter before anything else"
    flt = cfg["processors"]["filter/scope_errors"]
    assert flt["error_mode"] == "ignore"
    assert set(flt) == {"error_mode", "traces"} and set(flt["traces"]) == {"span"}
    (cond,) = flt["traces"]["span"]
    assert h.ottl_attribute_names(cond) == {contract.SCOPE_ERROR}
    assert cond.replace(" ", "") == f'not(span.attributes["{contract.SCOPE_ERROR}"]==true)', \
        "drop what is not a scope error"
    assert any(h.component_type(e) == "signal_to_metrics" for e in pipelines[anomalies]["exporters"])
    assert any(h.component_type(e) != "signal_to_metrics" for e in pipelines[anomalies]["exporters"]), \
        "anomaly pipeline needs an exporter of its own"


@pytest.mark.parametrize("names", PROCESSING, ids=PROCESSING_IDS)
def test_deltatocumulative_sits_between_signal_to_metrics_and_every_exporter(names):
    cfg = runnable(names)
    for pid, p in cfg["service"]["pipelines"].items():
        if any(h.component_type(r) == "signal_to_metrics" for r in p["receivers"]):
            procs = [h.component_type(x) for x in p["processors"]]
            assert "delta_to_cumulative" in procs, pid
            assert procs.index("transform") < procs.index("delta_to_cumulative"), pid


def test_gateway_counts_before_sampling_and_keeps_every_scope_error_trace():
    cfg = h.load_config("gateway.yaml")
    pipelines = cfg["service"]["pipelines"]
    sampled = [pid for pid, p in pipelines.items() if "tail_sampling" in p.get("processors", [])]
    assert sampled == ["traces/sampled"]
    # signal_to_metrics hangs off the un-sampled branch: no pipeline upstream of it samples.
    (s2m_feeder,) = [pid for pid, p in pipelines.items() if "signal_to_metrics/scope_errors" in p["exporters"]]
    assert "tail_sampling" not in pipelines[s2m_feeder]["processors"]
    ingest = pipelines["traces"]
    assert "forward/scope_errors" in ingest["exporters"] and "forward/sampling" in ingest["exporters"]
    policies = cfg["processors"]["tail_sampling"]["policies"]
    keep = [p for p in policies if p["type"] == "boolean_attribute"]
    assert keep and keep[0]["boolean_attribute"] == {"key": contract.SCOPE_ERROR, "value": True}
    assert not any(p["type"] in ("drop", "and", "composite") for p in policies), "nothing may override the keep policy"
    assert any(p["type"] == "probabilistic" for p in policies)


def test_agent_load_balances_traces_by_trace_id_and_redacts_first():
    cfg = h.load_config("agent.yaml")
    lb_id = "load_balancing/traces"
    lb = cfg["exporters"][lb_id]
    assert lb["routing_key"] == "traceID"
    assert "dns" in lb["resolver"] or "k8s" in lb["resolver"]
    traces = cfg["service"]["pipelines"]["traces"]
    assert traces["exporters"] == [lb_id]
    assert [h.component_type(x) for x in traces["processors"]] == ["memory_limiter", "transform", "redaction",
                                                                   "redaction"]
    for pid, p in cfg["service"]["pipelines"].items():
        if h.pipeline_signal(pid) == "metrics":
            assert lb_id not in p["exporters"], "traceID routing is invalid for metrics"


def test_agent_keeps_each_metric_series_on_one_gateway():
    """Not "any replica": a series split over gateway replicas is served twice to Prometheus (stale copies read as
    counter resets) and summed in parts by delta_to_cumulative. Hashed by stream over the same gateways as traces."""
    cfg = h.load_config("agent.yaml")
    lb = cfg["exporters"]["load_balancing/metrics"]
    assert lb["routing_key"] == "streamID"
    assert lb["resolver"] == cfg["exporters"]["load_balancing/traces"]["resolver"]
    assert lb["protocol"] == cfg["exporters"]["load_balancing/traces"]["protocol"]
    assert cfg["service"]["pipelines"]["metrics"]["exporters"] == ["load_balancing/metrics"]
    assert "any gateway replica will do" not in (h.CONFIG_DIR / "agent.yaml").read_text()


def test_exporters_batch_in_the_exporter_not_a_batch_processor():
    for names in RUNNABLE:
        cfg = runnable(names)
        for cid, ecfg in cfg["exporters"].items():
            t = h.component_type(cid)
            if t in ("otlp_grpc", "otlp_http"):
                assert "batch" in (ecfg.get("sending_queue") or {}), f"{names}: {cid}"
            if t == "load_balancing":
                assert "batch" in ecfg["protocol"]["otlp"]["sending_queue"]


SHARED_COMPONENTS = [
    ("processors", "memory_limiter"), ("processors", "transform/scrub"), ("processors", "redaction/openai"),
    ("processors", "redaction/key_names"),
    ("processors", "transform/scope_dimension"), ("processors", "transform/derived_metrics_writer"),
    ("processors", "delta_to_cumulative"), ("processors", "delta_to_cumulative/derived"),
    ("processors", "filter/scope_errors"), ("connectors", "forward/scope_errors"),
    ("connectors", "signal_to_metrics/scope_errors"), ("exporters", "otlp_grpc/main"),
    ("exporters", "debug/anomalies"), ("receivers", "otlp"), ("extensions", "health_check"),
]


@pytest.mark.parametrize("cls,cid", SHARED_COMPONENTS, ids=[c for _, c in SHARED_COMPONENTS])
def test_shared_components_are_identical_in_every_tier(cls, cid):
    configs = {n: h.load_config(n) for n in h.STANDALONE}
    defined = {n: c[cls][cid] for n, c in configs.items() if cid in (c.get(cls) or {})}
    assert "base.yaml" in defined and len(defined) >= 2
    assert all(v == defined["base.yaml"] for v in defined.values()), sorted(defined)


# ---------------------------------------------------------------------------------------------------
# Environment placeholders
# ---------------------------------------------------------------------------------------------------


def test_placeholder_checker():
    assert h.placeholder_problems("${env:A}") == []
    assert h.placeholder_problems("${env:A_1:-x.y:4317}") == []
    assert h.placeholder_problems("$${1}****") == []
    assert h.placeholder_problems("$VAR") and h.placeholder_problems("${VAR}") and h.placeholder_problems("${1}")


@pytest.mark.parametrize("name", h.STANDALONE + h.OVERLAYS)
def test_env_placeholders_use_env_syntax(name):
    cfg = h.load_config(name)
    problems = [f"{'.'.join(map(str, p))}: {e}" for p, s in h.walk_strings(cfg) for e in h.placeholder_problems(s)]
    assert problems == []


def _required_env(cfg) -> set[str]:
    return {m.group(1) for _, s in h.walk_strings(cfg) for m in h._ENV_REF.finditer(s) if m.group(2) is None}


@pytest.mark.parametrize("names,expected", [
    (("base.yaml",), {"MAIN_OTLP_ENDPOINT"}),
    (("base.yaml", "jaeger.yaml"), set()),
    (("base.yaml", "honeycomb.yaml"), {"HONEYCOMB_API_KEY"}),
    (("base.yaml", "otlp.yaml"), {"MAIN_OTLP_ENDPOINT", "ANOMALY_OTLP_ENDPOINT"}),
    (("gateway.yaml", "otlp.yaml"), {"MAIN_OTLP_ENDPOINT", "ANOMALY_OTLP_ENDPOINT"}),
    (("agent.yaml",), set()),
], ids=lambda v: "+".join(v) if isinstance(v, tuple) else None)
def test_required_env_vars_are_at_most_two(names, expected):
    assert _required_env(h.merged(*names)) == expected


def test_every_env_var_is_documented_in_the_readme():
    readme = (h.CONFIG_DIR / "README.md").read_text()
    names = set()
    for n in h.STANDALONE + h.OVERLAYS:
        names |= h.env_vars(h.load_config(n))
    assert names and [n for n in sorted(names) if n not in readme] == []


def test_regex_replacements_escape_dollar_and_work():
    """replace_pattern capture groups must be written "$${1}" (a bare "${1}" would be read as a config
    reference). After the collector turns "$$" into "$", the statement must scrub a bearer token."""
    cfg = h.load_config("base.yaml")
    statements = [s for cid, s in h.ottl_statements(cfg) if s.startswith("replace_pattern(")]
    assert statements
    message = ("401 from proxy: Authorization: Bearer abcdEFGH1234.tok_en and key sk-proj-" + "A1b2_C3d-" * 8
               + " token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2lnbmF0dXJlX2hlcmU")
    for st in statements:
        assert h.placeholder_problems(st) == []
        regex, replacement = h.ottl_string_literals(h.confmap_unescape(st))[:2]
        py_replacement = re.sub(r"\$\{(\d+)\}", r"\\g<\1>", replacement)
        message = re.sub(regex, py_replacement, message)
    assert "abcdEFGH1234" not in message and "A1b2_C3d" not in message and "eyJzdWIi" not in message
    assert "Bearer ****" in message and "sk-****" in message and "token ****" in message


# ---------------------------------------------------------------------------------------------------
# Attribute and metric names against the contract
# ---------------------------------------------------------------------------------------------------


def test_ottl_extractor():
    st = ('set(span.attributes["a.b"], resource.attributes["c"]) '
          'where attributes["d_e"] == nil and spanevent.attributes["f"] != nil')
    assert h.ottl_attribute_names(st) == {"a.b", "c", "d_e", "f"}
    assert h.ottl_string_literals(r'f("a\\.b", "q\"x")') == [r"a\.b", 'q"x']


@pytest.mark.parametrize("names", RUNNABLE + [(o,) for o in h.OVERLAYS], ids=RUNNABLE_IDS + list(h.OVERLAYS))
def test_every_attribute_named_in_a_config_is_emitted(names):
    cfg = h.merged(*names)
    found = []
    for cid, st in h.ottl_statements(cfg):
        found += [(cid, n) for n in h.ottl_attribute_names(st)]
    found += h.structured_attribute_names(cfg)
    unknown = sorted({(cid, n) for cid, n in found if n not in h.ALLOWED_ATTRIBUTES})
    assert unknown == []
    if names in PROCESSING:
        assert {n for _, n in found} >= {contract.SCOPE_ERROR, contract.SCOPE_MISSING, contract.SCOPE,
                                         contract.KEY_FINGERPRINT, contract.DIAGNOSIS}


@pytest.mark.parametrize("name", ["base.yaml", "gateway.yaml"])
def test_span_derived_metric_dimensions(name):
    cfg = h.load_config(name)
    (metric,) = cfg["connectors"]["signal_to_metrics/scope_errors"]["spans"]
    assert metric["name"] == h.DERIVED_SCOPE_ERRORS and metric["unit"] == h.DERIVED_SCOPE_ERRORS_UNIT
    assert h.DERIVED_SCOPE_ERRORS not in {contract.METRIC_SCOPE_ERRORS, contract.METRIC_REQUESTS}
    attrs = {a["key"]: a for a in metric["attributes"]}
    assert set(attrs) == {contract.KEY_FINGERPRINT, contract.SCOPE, contract.DIAGNOSIS}
    assert attrs[contract.DIAGNOSIS]["default_value"] == contract.DIAGNOSIS_UNKNOWN
    assert all("default_value" in a for a in metric["attributes"]), "spans lacking a dimension must still count"
    assert h.SERVICE_NAME in {a["key"] for a in metric["include_resource_attributes"]}
    # A non-monotonic sum (the connector's default) would reach Prometheus as a gauge without _total.
    assert metric["sum"]["monotonic"] is True
    assert cfg["connectors"]["signal_to_metrics/scope_errors"]["error_mode"] == "ignore"
    assert [h.ottl_attribute_names(c) for c in metric["conditions"]] == [{contract.SCOPE_ERROR}]
    # openai.scope (string) is derived from the first element of openai.scope.missing (string[]), then validated.
    first, *_ = [s for cid, s in h.ottl_statements(cfg) if cid == "transform/scope_dimension"]
    assert first.startswith(f'set(span.attributes["{contract.SCOPE}"], span.attributes["{contract.SCOPE_MISSING}"][0])')


# ---------------------------------------------------------------------------------------------------
# OTLP -> Prometheus names and the rule file
# ---------------------------------------------------------------------------------------------------


def test_prometheus_name_translation():
    assert h.prom_metric_name("http.server.request.duration", "s", "histogram") == \
        "http_server_request_duration_seconds"
    assert h.prom_metric_name("app.jobs.done", "{job}", "counter") == "app_jobs_done_total"
    assert h.prom_metric_name("system.memory.usage", "By", "updowncounter") == "system_memory_usage_bytes"
    assert h.prom_metric_name("process.cpu.utilization", "1", "gauge") == "process_cpu_utilization_ratio"
    assert h.prom_metric_name("queue.latency_seconds", "s", "gauge") == "queue_latency_seconds"
    assert h.prom_metric_name("net.io", "By/s", "gauge") == "net_io_bytes_per_second"
    assert h.prom_label_name("http.response.status_code") == "http_response_status_code"
    assert h.prom_label_name("2xx.rate") == "key_2xx_rate"
    series = h.prom_series_names()
    assert len(series) == 6  # 3 counters + histogram bucket/sum/count
    assert all(re.fullmatch(r"[a-z_]+", s) for s in series)


def test_promql_extractor():
    metrics, labels = h.promql_names(
        'sum by (a, b) (increase(m_total{c="x", d!~"y"}[5m] offset 5m)) '
        '/ on (a) group_left (e) n_total > 0 and bool m_total'
    )
    assert metrics == {"m_total", "n_total"}
    assert labels == {"a", "b", "c", "d", "e"}


#: Metric labels decided for the SDK's metrics (BRIEF decision 3, issue 14): organization and project as sent,
#: and the key hint. The rules join on them; a no-op once attributes.METRIC_ATTRIBUTES carries them.
RULE_LABELS = h.PROM_LABELS | {h.prom_label_name(a) for a in (contract.ORGANIZATION, contract.PROJECT,
                                                              contract.KEY_HINT)}


def _rules() -> list[dict]:
    doc = h.load_yaml(h.ALERTS_DIR / "prometheus-rules.yaml")
    return [r for g in doc["groups"] for r in g["rules"]]


def test_rules_use_translated_contract_names_only():
    series = h.prom_series_names()
    used_metrics: set[str] = set()
    for rule in _rules():
        metrics, labels = h.promql_names(rule["expr"])
        assert metrics and metrics <= set(series), (rule["alert"], metrics - set(series))
        assert labels <= RULE_LABELS, (rule["alert"], labels - RULE_LABELS)
        used_metrics |= metrics
        grouped = {lab for m in h._GROUPING.finditer(rule["expr"]) if m.group(1) == "by"
                   for lab in (x.strip() for x in m.group(2).split(","))}
        for text in rule.get("annotations", {}).values():
            assert h.template_labels(text) <= grouped, (rule["alert"], "annotation uses a label the expression drops")
        for value in re.findall(r'openai_scope_error_diagnosis\s*=\s*"([^"]*)"', rule["expr"]):
            assert value in contract.DIAGNOSES
    assert h.prom_metric_name(contract.METRIC_SCOPE_ERRORS, contract.METRIC_SCOPE_ERRORS_UNIT, "counter") \
        in used_metrics
    assert h.prom_metric_name(contract.METRIC_REQUESTS, contract.METRIC_REQUESTS_UNIT, "counter") in used_metrics


def test_rules_cover_the_required_alerts():
    rules = {r["alert"]: r for r in _rules()}
    fp, scope, diag = (h.prom_label_name(a) for a in (contract.KEY_FINGERPRINT, contract.SCOPE, contract.DIAGNOSIS))
    spike = rules["OpenAIScopeErrorSpike"]
    assert {fp, scope} <= h.promql_names(spike["expr"])[1]
    assert "unless openai_client_scope_errors_total offset 5m" in spike["expr"], "a burst in a new series' first export"
    mutated = rules["OpenAIScopeErrorClientMutated"]
    assert f'{diag}="{contract.DIAGNOSIS_CLIENT_MUTATED}"' in mutated["expr"]
    assert "for" not in mutated, "client_mutated must fire on first sight"
    assert "unless" in mutated["expr"] and "offset" in mutated["expr"], "new series need the 'unless ... offset' branch"
    widespread = rules["OpenAIScopeErrorsWidespread"]
    assert "count by" in widespread["expr"] and {"job", "instance"} <= h.promql_names(widespread["expr"])[1]
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


def _rule_tests() -> dict:
    return h.load_yaml(h.ALERTS_DIR / "prometheus-rules.test.yaml")


def test_rule_unit_tests_fire_and_stay_quiet_for_every_alert_with_contract_labels():
    doc = _rule_tests()
    assert doc["rule_files"] == ["prometheus-rules.yaml"]
    series_names = set(h.prom_series_names())
    firing, quiet = set(), set()
    for test in doc["tests"]:
        for s in test["input_series"]:
            name, labels = h.parse_series(s["series"])
            assert name in series_names, name
            assert set(labels) <= RULE_LABELS, set(labels) - RULE_LABELS
            if h.prom_label_name(contract.DIAGNOSIS) in labels:
                assert labels[h.prom_label_name(contract.DIAGNOSIS)] in verdicts.MEANINGS
            fp = labels.get(h.prom_label_name(contract.KEY_FINGERPRINT))
            if fp is not None:
                assert fp == contract.FINGERPRINT_OVERFLOW or re.fullmatch(r"[0-9a-f]{16}", fp)
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
            for alert in case.get("exp_alerts") or []:
                assert set(alert["exp_labels"]) - {"severity", "verdict", "cause"} <= RULE_LABELS
    alerts = {r["alert"] for r in _rules()}
    assert alerts <= firing, alerts - firing
    assert alerts <= quiet, alerts - quiet


def test_promtool_check_rules():
    promtool = require_tool("promtool")
    out = subprocess.run([promtool, "check", "rules", "prometheus-rules.yaml"], cwd=h.ALERTS_DIR,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout + out.stderr


def test_promtool_test_rules():
    promtool = require_tool("promtool")
    out = subprocess.run([promtool, "test", "rules", "prometheus-rules.test.yaml"], cwd=h.ALERTS_DIR,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


_INDENT = " " * 16  # the rules file's indentation inside a multi-line expr
_MUTATED_15M_AGO = 'openai_client_scope_errors_total{openai_scope_error_diagnosis="client_mutated"} offset 15m'


@pytest.mark.parametrize("old,new", [
    (">= 5\n", ">= 50\n"),  # spike floor: the 30-in-5m burst would no longer fire
    ("unless\n" + _INDENT + _MUTATED_15M_AGO, "and\n" + _INDENT + _MUTATED_15M_AGO),
    ("sum by (openai_scope, job, instance) (increase(openai_client_scope_errors_total[10m])) > 0\n            ) >= 3\n",
     "sum by (openai_scope, job, instance) (increase(openai_client_scope_errors_total[10m])) > 0\n"
     "            ) >= 4\n"),
    # the spike's new-series term: a burst in the first export of a new series would go unseen
    ("((openai_client_scope_errors_total unless openai_client_scope_errors_total offset 5m) "
     "or increase(openai_client_scope_errors_total[5m])) >= 5",
     "(increase(openai_client_scope_errors_total[5m])) >= 5"),
], ids=["spike-floor", "new-series-branch", "widespread-threshold", "spike-new-series"])
def test_promtool_tests_catch_broken_rules(tmp_path, old, new):
    promtool = require_tool("promtool")
    rules = (h.ALERTS_DIR / "prometheus-rules.yaml").read_text()
    assert rules.count(old) == 1
    (tmp_path / "prometheus-rules.yaml").write_text(rules.replace(old, new))
    shutil.copy(h.ALERTS_DIR / "prometheus-rules.test.yaml", tmp_path)
    valid = subprocess.run([promtool, "check", "rules", "prometheus-rules.yaml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert valid.returncode == 0, "the mutation must still be a valid rule file"
    out = subprocess.run([promtool, "test", "rules", "prometheus-rules.test.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0, "the rule unit tests did not notice a broken rule"


# ---------------------------------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------------------------------

_rng = random.Random(4)
_KEY_CHARS = string.ascii_letters + string.digits + "_-"


def _token(n: int, chars: str = _KEY_CHARS) -> str:
    return "".join(_rng.choice(chars) for _ in range(n))


SECRETS = [
    "sk-proj-" + _token(156),
    "sk-svcacct-" + _token(156),
    "sk-admin-" + _token(120),
    "sk-" + _token(48, string.ascii_letters + string.digits),
    "Bearer sk-proj-" + _token(156),
    "bearer " + _token(40, string.ascii_letters + string.digits + "._~+/="),
    "eyJhbGciOiJSUzI1NiJ9." + _token(60) + "." + _token(80),
]
FINGERPRINT = hashlib.sha256(b"sk-proj-example").hexdigest()[:16]
HINTS = ["sk-proj-...WXYZ", "sk-svcacct-...a1B2", "sk-...9xYz", "sk-admin-...Q_-1", "eyJ...#1a2b"]
SAFE_VALUES = [FINGERPRINT, *HINTS, "req_" + hashlib.md5(b"r").hexdigest(), "api.threads.read",
               "https://api.openai.com/v1/threads/{thread_id}",
               "proj_" + _token(24, string.ascii_letters + string.digits)]


def _blocked_values() -> list[str]:
    values = {tuple(r["blocked_values"]) for n in h.STANDALONE for r in h.redaction_configs(h.load_config(n)).values()
              if "blocked_values" in r}
    assert len(values) == 1, "redaction patterns differ between tiers"
    return list(values.pop())


def test_redaction_patterns_match_secrets_and_spare_safe_values():
    patterns = [re.compile(p) for p in _blocked_values()]
    for secret in SECRETS:
        assert any(p.search(secret) for p in patterns), secret[:20]
        # The processor keeps its patterns in a Go map: any order must leave nothing usable behind.
        for order in itertools.permutations(patterns):
            masked = "prefix " + secret + " suffix"
            for p in order:
                masked = p.sub("****", masked)
            assert not re.search(r"[A-Za-z0-9_.~+/=-]{12,}", masked), masked
    for value in SAFE_VALUES:
        assert not any(p.search(value) for p in patterns), value


def test_redaction_patterns_stay_in_the_re2_python_subset():
    # RE2 lacks lookaround and backreferences; Python lacks \C and some Unicode classes.
    for n in h.STANDALONE:
        for r in h.redaction_configs(h.load_config(n)).values():
            for p in r.get("blocked_values", []) + r.get("blocked_key_patterns", []):
                assert not re.search(r"\(\?<?[=!]|\\[1-9]|\\[pPC]|\(\?P?<\w", p), p
                re.compile(p)


@pytest.mark.parametrize("name", ["base.yaml", "gateway.yaml", "k8s/gateway-collector-otlp.yaml",
                                  "k8s/gateway-collector-jaeger.yaml"])
def test_anomaly_log_is_one_line_per_batch_unless_detailed_is_asked_for(name):
    """A detailed dump per scope-error batch is not sampled away under load (benchmarks/README.md)."""
    text = (h.CONFIG_DIR / name).read_text()
    assert "verbosity: ${env:ANOMALY_LOG_VERBOSITY:-basic}" in text
    assert "ANOMALY_LOG_VERBOSITY:-detailed" not in text
    assert name.startswith("k8s/") or "ANOMALY_LOG_VERBOSITY=detailed" in text, "how to turn it on is documented"


#: The key-name pattern shipped until 2026-12-01. The current one drops the words a separator already covers
#: (x-api-key, proxy-authorization, access_token), which Go's regexp evaluates ~30% faster (benchmarks/README.md).
OLD_KEY_PATTERN = (r"(?i)^(.*[._-])?(api[._-]?key|x-api-key|authorization|proxy-authorization|secret|password|passwd|"
                   r"access[._-]?token|token)$")
KEY_WORDS = ("api", "key", "apikey", "api_key", "api-key", "api.key", "api__key", "API-Key", "x-api-key", "X-API-KEY",
             "authorization", "Authorization", "proxy-authorization", "proxyauthorization", "secret", "Secret",
             "secrets", "password", "passwd", "Passwd", "passwod", "pasword", "passworrd", "access", "token", "Token",
             "tokens", "accesstoken", "access_token", "access-token", "AccessToken", "access__token", "refresh_token",
             "\u212aey", "\u017fecret", "toke", "oken", "")
KEY_SEPARATORS = ("", ".", "_", "-", "__", " ", "/", ":", "\n", "\u00e9")


@functools.cache
def _as_go(pattern: str) -> re.Pattern[str]:
    """Go's `$` (no m flag) is the end of the text; Python's also matches before a final newline."""
    return re.compile(h.confmap_unescape(pattern).replace("$", r"\Z"))


def _key_corpus() -> list[str]:
    heads = ("", "openai", "http.request.header", "app.x", "\n", "a\nb")
    tails = ("", "s", "_id", ".value", "\n", "x", "-")
    names = {hd + sep + w + tl for hd in heads for sep in KEY_SEPARATORS for w in KEY_WORDS for tl in tails}
    names |= {a + sep + b for a in KEY_WORDS for sep in KEY_SEPARATORS for b in KEY_WORDS}
    return sorted(names | h.ALLOWED_ATTRIBUTES)


def _key_patterns(cfg: dict) -> list[str]:
    return [p for r in h.redaction_configs(cfg).values() for p in r.get("blocked_key_patterns", [])]


def _redaction_chain(cfg: dict) -> list[dict]:
    """The redaction processors in the order the traces pipeline runs them."""
    rcfgs = h.redaction_configs(cfg)
    for pipe in cfg["service"]["pipelines"].values():
        chain = [rcfgs[p] for p in pipe.get("processors", []) if p in rcfgs]
        if chain:
            return chain
    raise AssertionError("no redaction processor in any pipeline")


def _disagreements(pattern: str, names) -> list[str]:
    old, new = _as_go(OLD_KEY_PATTERN), _as_go(pattern)
    return [n for n in names if bool(old.search(n)) != bool(new.search(n))]


@pytest.mark.parametrize("name", h.STANDALONE)
def test_key_name_pattern_masks_exactly_the_keys_the_old_pattern_masked(name):
    (pattern,) = _key_patterns(h.load_config(name))
    assert pattern != h.confmap_unescape(OLD_KEY_PATTERN)
    corpus = _key_corpus()
    assert _disagreements(pattern, corpus) == []
    hits = sum(1 for n in corpus if _as_go(pattern).search(n))
    assert 1000 < hits < len(corpus) - 1000, (hits, len(corpus))  # both sides of the language are exercised
    # the corpus tells apart wordings that differ only slightly
    for mutant in (pattern.replace("(?:access)?", ""), pattern.replace("[._-])?", "[._])?"),
                   pattern.replace("(?i)", ""), pattern.replace("passw(?:or)?d", "password"),
                   pattern.replace("^(?:.*[._-])?", "^(?:.*[._-])"), pattern.replace("$", "")):
        assert mutant != pattern and _disagreements(mutant, corpus), mutant


(_SHIPPED_KEY_PATTERN,) = _key_patterns(h.load_config("base.yaml"))
_KEY_PIECES = hs.sampled_from(KEY_WORDS + KEY_SEPARATORS + ("a", "K", "s", "\u212a", "\u017f", "t", "y", "d"))


@settings(max_examples=2000, deadline=None)
@given(hs.lists(_KEY_PIECES, max_size=6).map("".join) | hs.text(max_size=30))
def test_key_name_pattern_agrees_with_the_old_pattern_on_random_keys(key):
    assert _disagreements(_SHIPPED_KEY_PATTERN, [key]) == []


def test_split_key_name_check_masks_what_one_processor_with_the_old_pattern_masked():
    """base.yaml's redaction/key_names skips the instrumentation's fixed attribute names (which the pattern does
    not match) and redaction/openai checks every value: together they mask exactly what one processor with the
    old key-name pattern and the value patterns did."""
    cfg = h.load_config("base.yaml")
    chain = _redaction_chain(cfg)
    names, values = chain
    assert "blocked_values" not in names and "blocked_key_patterns" not in values
    assert values["ignored_keys"] == [contract.KEY_FINGERPRINT], "every other value is checked"
    assert set(names["ignored_keys"]) <= h.ALLOWED_ATTRIBUTES
    assert not [k for k in names["ignored_keys"] if _as_go(OLD_KEY_PATTERN).search(k)]
    one = {**values, "blocked_key_patterns": [OLD_KEY_PATTERN.replace("$", r"\Z")]}
    names_go = {**names, "blocked_key_patterns": [p.replace("$", r"\Z") for p in names["blocked_key_patterns"]]}
    rng = random.Random(5)
    keys = _key_corpus()
    for i in range(0, len(keys), 50):
        span = {k: rng.choice(SECRETS + SAFE_VALUES + ["x"]) for k in keys[i:i + 50]}
        assert h.redact(values, h.redact(names_go, span)) == h.redact(one, span)
    # the model is not vacuous: without the key-name processor, secret-named keys keep their values
    span = {"app.password": "hunter2", "db.token": "t0ken-value"}
    assert h.redact(values, span) == span != h.redact(one, span)


@pytest.mark.parametrize("name", h.STANDALONE)
def test_redaction_keeps_every_contract_attribute_and_masks_raw_keys(name):
    cfg = h.load_config(name)
    (rcfg,) = [r for r in _redaction_chain(cfg) if r.get("blocked_values")]
    assert all(r["allow_all_keys"] is True for r in _redaction_chain(cfg)), "allowed_keys is fail-closed"
    assert contract.KEY_FINGERPRINT in rcfg["ignored_keys"]
    assert contract.KEY_HINT not in rcfg.get("ignored_keys", []), "the hint stays value-checked"
    for attr in h.CONTRACT_ATTRIBUTES | h.RESOURCE_ATTRIBUTES:
        assert not any(re.search(p, attr) for p in _key_patterns(cfg)), attr
    span = {
        contract.KEY_FINGERPRINT: FINGERPRINT,
        contract.KEY_HINT: HINTS[0],
        contract.KEY_KIND: contract.KEY_KINDS[0],
        contract.REQUEST_ID: SAFE_VALUES[5],
        contract.SCOPE_MISSING: ["api.threads.read"],
        contract.SCOPE_ERROR: True,
        contract.HTTP_STATUS: 401,
        contract.DIAGNOSIS: contract.DIAGNOSIS_SCOPE_FLAPPING,
        contract.CLIENT_MUTATED: list(contract.MUTABLE_FIELDS[:1]),
        "openai.api_key": SECRETS[0],  # what a careless instrumentation would leak
        "exception.message": "Incorrect API key provided: " + SECRETS[3],
        "http.request.header.x-custom": [SECRETS[4]],
        "llm.prompt": "use Authorization: " + SECRETS[5],
    }
    out = span
    for r in _redaction_chain(cfg):
        out = h.redact(r, out)
    for key in span:
        if key in h.CONTRACT_ATTRIBUTES:
            assert out[key] == span[key], key
    assert out["openai.api_key"] == "****"
    assert SECRETS[3] not in out["exception.message"] and "****" in out["exception.message"]
    assert SECRETS[5].split()[1] not in out["llm.prompt"]
    # Header attributes are deleted outright by transform/scrub before redaction runs.
    delete_patterns = {lit for cid, st in h.ottl_statements(cfg) if cid == "transform/scrub"
                       and st.startswith("delete_matching_keys")
                       for lit in h.ottl_string_literals(h.confmap_unescape(st))}
    header_patterns = {p for p in delete_patterns if "header" in p}
    assert len(header_patterns) == 1 and len(delete_patterns) == 3
    # ... and attributes NAMED after a key or a JWT (the redaction processor checks values only)
    name_res = [re.compile(p) for p in delete_patterns - header_patterns]
    assert all(any(r.search(f"app.by_key.{s}") for r in name_res)
               for s in SECRETS if not s.lower().startswith("bearer "))
    assert not any(r.search(a) for r in name_res for a in h.ALLOWED_ATTRIBUTES | h.CONTRACT_ATTRIBUTES)
    header_re = re.compile(header_patterns.pop())
    for header in ("http.request.header.authorization", "http.request.header.Authorization",
                   "http.request.header.api-key", "http.request.header.x-api-key", "http.response.header.set-cookie"):
        assert header_re.search(header), header
    assert not any(header_re.search(a) for a in h.ALLOWED_ATTRIBUTES)


def test_redaction_model_reacts_to_config():
    """The model is not vacuous: ignoring nothing masks a fingerprint once a broad pattern exists."""
    rcfg = {"allow_all_keys": True, "blocked_values": [r"[0-9a-f]{16}"]}
    assert h.redact(rcfg, {contract.KEY_FINGERPRINT: FINGERPRINT})[contract.KEY_FINGERPRINT] == "****"
    rcfg["ignored_keys"] = [contract.KEY_FINGERPRINT]
    assert h.redact(rcfg, {contract.KEY_FINGERPRINT: FINGERPRINT})[contract.KEY_FINGERPRINT] == FINGERPRINT
    assert h.redact({"allowed_keys": []}, {contract.SCOPE: "x"}) == {}


# ---------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", h.OVERLAY_BASES)
def test_jaeger_overlay(base):
    cfg = h.merged(base, "jaeger.yaml")
    main = cfg["exporters"]["otlp_grpc/main"]
    assert main["endpoint"] == "${env:JAEGER_OTLP_ENDPOINT:-jaeger:4317}" and main["tls"]["insecure"] is True
    for pid, p in cfg["service"]["pipelines"].items():
        if h.pipeline_signal(pid) == "metrics":
            assert p["exporters"] == ["prometheus"], pid
        else:
            assert "prometheus" not in p["exporters"]
    # Jaeger takes no logs: sent there, every batch fails (tests/test_stack_overlays.py on the real Collector).
    assert cfg["service"]["pipelines"]["logs"]["exporters"] == ["debug/logs"]


@pytest.mark.parametrize("base", h.OVERLAY_BASES)
def test_honeycomb_overlay(base):
    cfg = h.merged(base, "honeycomb.yaml")
    ex = cfg["exporters"]
    assert ex["otlp_grpc/main"]["headers"] == {"x-honeycomb-team": "${env:HONEYCOMB_API_KEY}"}
    metrics_exporters = {e for pid, p in cfg["service"]["pipelines"].items() if h.pipeline_signal(pid) == "metrics"
                         for e in p["exporters"]}
    assert metrics_exporters == {"otlp_grpc/honeycomb_metrics"}
    assert "x-honeycomb-dataset" in ex["otlp_grpc/honeycomb_metrics"]["headers"]
    for e in ("otlp_grpc/main", "otlp_grpc/honeycomb_metrics"):
        assert ex[e]["endpoint"] == "${env:HONEYCOMB_OTLP_ENDPOINT:-api.honeycomb.io:443}"
    text = (h.CONFIG_DIR / "honeycomb.yaml").read_text() + (h.CONFIG_DIR / "README.md").read_text()
    assert "api.eu1.honeycomb.io:443" in text


@pytest.mark.parametrize("base", h.OVERLAY_BASES)
def test_otlp_overlay_adds_a_dedicated_anomaly_sink(base):
    b = h.load_config(base)
    cfg = h.merged(base, "otlp.yaml")
    before = b["service"]["pipelines"]["traces/scope_errors"]["exporters"]
    after = cfg["service"]["pipelines"]["traces/scope_errors"]["exporters"]
    assert set(before) < set(after) and "otlp_grpc/anomalies" in after
    assert cfg["exporters"]["otlp_grpc/anomalies"]["endpoint"] == "${env:ANOMALY_OTLP_ENDPOINT}"
    # The main backend is a trace store (Tempo takes neither metrics nor logs) unless a further file adds it back.
    assert cfg["service"]["pipelines"]["logs"]["exporters"] == ["debug/logs"]


# ---------------------------------------------------------------------------------------------------
# Honeycomb triggers and SLO
# ---------------------------------------------------------------------------------------------------

HONEYCOMB_FILES = sorted(p.name for p in h.HONEYCOMB_DIR.glob("*.json"))
TRIGGERS = [n for n in HONEYCOMB_FILES if n.startswith("trigger-")]


def test_honeycomb_files_exist():
    assert len(TRIGGERS) >= 3
    assert "slo-scope-ok.json" in HONEYCOMB_FILES and "derived-column-sli.json" in HONEYCOMB_FILES


def _honeycomb_columns(node) -> set[str]:
    cols = set()
    for f in node.get("filters", []):
        cols.add(f["column"])
    for c in node.get("calculations", []):
        if "column" in c:
            cols.add(c["column"])
    cols |= set(node.get("breakdowns", []))
    return cols


@pytest.mark.parametrize("name", TRIGGERS)
def test_honeycomb_trigger_is_a_valid_api_body(name):
    t = json.loads((h.HONEYCOMB_DIR / name).read_text())
    assert set(t) <= {"name", "description", "tags", "query", "query_id", "frequency", "threshold",
                      "alert_type", "disabled", "recipients", "evaluation_schedule_type", "evaluation_schedule"}
    assert 1 <= len(t["name"]) <= 120 and len(t.get("description", "")) <= 1023
    assert 60 <= t["frequency"] <= 86400 and t["frequency"] % 60 == 0
    q = t["query"]
    assert q["time_range"] <= 4 * t["frequency"], "query duration may be at most 4x the frequency"
    assert t["threshold"]["op"] in {">", ">=", "<", "<="} and isinstance(t["threshold"]["value"], (int, float))
    assert t["alert_type"] in {"on_change", "on_true"}
    assert len(q["calculations"]) == 1, "a trigger evaluates exactly one calculation"
    for c in q["calculations"]:
        assert c["op"] in {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MAX", "MIN", "P50", "P90", "P95", "P99"}
        assert (c["op"] == "COUNT") == ("column" not in c)
    assert _honeycomb_columns(q) <= h.ALLOWED_ATTRIBUTES, _honeycomb_columns(q) - h.ALLOWED_ATTRIBUTES
    for f in q["filters"]:
        if f["column"] == contract.SCOPE_ERROR:
            assert f["value"] is True, "openai.scope_error is a boolean column"
        if f["column"] == contract.DIAGNOSIS:
            assert f["value"] in contract.DIAGNOSES
    for tag in t.get("tags", []):
        assert re.fullmatch(r"[a-zA-Z]{1,32}", tag["key"]) and re.fullmatch(r"[a-zA-Z0-9/-]{1,128}", tag["value"])
    assert t["recipients"] and all(set(r) == {"id"} for r in t["recipients"])


def test_honeycomb_triggers_cover_the_required_signals():
    queries = [json.loads((h.HONEYCOMB_DIR / n).read_text())["query"] for n in TRIGGERS]
    calcs = [(c["op"], c.get("column")) for q in queries for c in q["calculations"]]
    assert ("COUNT_DISTINCT", contract.CLIENT_ID) in calcs
    filters = [(f["column"], f["value"]) for q in queries for f in q["filters"]]
    assert (contract.DIAGNOSIS, contract.DIAGNOSIS_CLIENT_MUTATED) in filters
    assert (contract.SCOPE_ERROR, True) in filters


def test_honeycomb_slo_and_its_sli():
    slo = json.loads((h.HONEYCOMB_DIR / "slo-scope-ok.json").read_text())
    dc = json.loads((h.HONEYCOMB_DIR / "derived-column-sli.json").read_text())
    assert set(slo) <= {"name", "description", "sli", "time_period_days", "target_per_million", "tags", "dataset_slugs"}
    assert slo["sli"]["alias"] == dc["alias"]
    assert 1 <= slo["time_period_days"] <= 90 and 0 < slo["target_per_million"] < 1_000_000
    cols = set(re.findall(r"\$([A-Za-z0-9_.]+)", dc["expression"]))
    assert cols and cols <= h.ALLOWED_ATTRIBUTES and contract.SCOPE_ERROR in cols
    assert dc["expression"].count("(") == dc["expression"].count(")")


# ---------------------------------------------------------------------------------------------------
# Runbook and README
# ---------------------------------------------------------------------------------------------------


def test_every_alert_has_a_runbook_section():
    anchors = h.markdown_anchors(h.ALERTS_DIR / "RUNBOOK.md")
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]  # base URL: the external label openai_scopes_runbook_url
        assert url.startswith("{{ $externalLabels.openai_scopes_runbook_url }}#")
        assert url.split("#", 1)[1] == rule["alert"].lower() and rule["alert"].lower() in anchors
    for name in [*TRIGGERS, "slo-scope-ok.json"]:
        desc = json.loads((h.HONEYCOMB_DIR / name).read_text())["description"]
        anchor = re.search(r"RUNBOOK\.md#([\w-]+)", desc).group(1)
        assert anchor in anchors, (name, anchor)


def test_runbook_points_at_the_distinguishing_attributes():
    text = (h.ALERTS_DIR / "RUNBOOK.md").read_text()
    for attr in (contract.CLIENT_MUTATED, contract.KEY_FINGERPRINT, contract.REQUEST_ID, contract.CLIENT_ID,
                 contract.SCOPE_MISSING, contract.DIAGNOSIS_LAST_SUCCESS_CLIENT):
        assert f"`{attr}`" in text, attr


def test_readme_states_version_and_prometheus_names():
    text = (h.CONFIG_DIR / "README.md").read_text()
    assert f"v{h.TARGET_VERSION}" in text and "tested" in text.lower()
    for series in h.prom_series_names():
        if not series.endswith(("_sum", "_count")):
            assert series in text, series
    for cfg in h.STANDALONE + h.OVERLAYS:
        assert cfg in text
    assert "structurally" in text, "README must say what was not run here"


# ---------------------------------------------------------------------------------------------------
# Local stack
# ---------------------------------------------------------------------------------------------------


def _compose() -> dict:
    return h.load_config("compose.yaml")


def test_compose_stack_is_wired_to_these_configs():
    c = _compose()
    svc = c["services"]
    assert set(svc) == {"otelcol", "jaeger", "prometheus"}
    col = svc["otelcol"]
    assert col["image"] == f"otel/opentelemetry-collector-contrib:{h.TARGET_VERSION}"
    configs = [a.split("=", 1)[1] for a in col["command"] if a.startswith("--config=")]
    assert [Path(p).name for p in configs] == ["base.yaml", "jaeger.yaml"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in col["volumes"]}
    for p in configs:
        assert (h.CONFIG_DIR / mounts[p]).resolve() == (h.CONFIG_DIR / Path(p).name).resolve()
    assert {"4317:4317", "4318:4318"} <= set(col["ports"])
    merged = h.merged("base.yaml", "jaeger.yaml")
    assert _required_env(merged) == set()
    jaeger_host = col["environment"]["JAEGER_OTLP_ENDPOINT"].split(":")[0]
    # The image tags are the versions tests/test_stack.py runs: Jaeger 2.12.0 (= cmd/jaeger v1.75.0), Prometheus 2.42.0.
    assert jaeger_host == "jaeger" and svc["jaeger"]["image"] == "jaegertracing/jaeger:2.12.0"
    assert svc["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert "16686:16686" in svc["jaeger"]["ports"]
    assert any("0.0.0.0:4317" in a for a in svc["jaeger"]["command"])
    prom_port = col["environment"]["PROMETHEUS_EXPORTER_ENDPOINT"].rsplit(":", 1)[1]
    scrape = h.load_yaml(h.CONFIG_DIR / "compose" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in scrape["scrape_configs"]}
    exporter_job = jobs["otelcol-exporter"]
    assert exporter_job["honor_labels"] is True, "keep job/instance from service.name/service.instance.id"
    assert exporter_job["static_configs"][0]["targets"] == [f"otelcol:{prom_port}"]
    pmounts = {v.split(":")[1]: v.split(":")[0] for v in svc["prometheus"]["volumes"]}
    for rf in scrape["rule_files"]:
        assert (h.CONFIG_DIR / pmounts[rf]).resolve() == (h.ALERTS_DIR / "prometheus-rules.yaml").resolve()


def test_promtool_check_compose_prometheus_config(tmp_path):
    promtool = require_tool("promtool")
    scrape = h.load_yaml(h.CONFIG_DIR / "compose" / "prometheus.yml")
    scrape["rule_files"] = [str(h.ALERTS_DIR / "prometheus-rules.yaml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(scrape))
    out = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------------
# Kubernetes (OpenTelemetry Operator)
# ---------------------------------------------------------------------------------------------------


def _render_module():
    spec = importlib.util.spec_from_file_location("k8s_render", h.K8S_DIR / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_operator_manifests_are_up_to_date():
    rendered = _render_module().render()
    for name, text in rendered.items():
        assert (h.K8S_DIR / name).read_text() == text, f"{name} is stale: run collector-config/k8s/render.py"


def test_operator_manifests_embed_valid_configs():
    agent = h.load_yaml(h.K8S_DIR / "agent-collector.yaml")
    gateway = h.load_yaml(h.K8S_DIR / "gateway-collector-otlp.yaml")  # each overlay: tests/test_fleet_k8s.py
    for cr in (agent, gateway):
        assert cr["apiVersion"] == "opentelemetry.io/v1beta1" and cr["kind"] == "OpenTelemetryCollector"
        assert cr["spec"]["image"].endswith(":" + h.TARGET_VERSION)
        assert "limits" in cr["spec"]["resources"], "memory_limiter percentages need a cgroup limit"
    assert agent["spec"]["mode"] == "daemonset" and "collector-k8s" in agent["spec"]["image"]
    assert agent["spec"]["config"] == h.load_config("agent.yaml")
    assert gateway["spec"]["config"] == h.merged("gateway.yaml", "otlp.yaml")
    assert h.wiring_problems(gateway["spec"]["config"]) == []
    # The agents' default DNS name is the headless Service the operator creates for the gateway.
    default = agent["spec"]["config"]["exporters"]["load_balancing/traces"]["resolver"]["dns"]["hostname"]
    assert f"{gateway['metadata']['name']}-collector-headless.{gateway['metadata']['namespace']}." in default


# ---------------------------------------------------------------------------------------------------
# Scrub in every context (issue 16): what transform/scrub covers, derived labels, the cap, logs
# ---------------------------------------------------------------------------------------------------

#: Attribute maps of every OTTL context the transform processor reaches, per signal.
ATTRIBUTE_MAPS = {
    "trace_statements": ("resource.attributes", "scope.attributes", "span.attributes", "spanevent.attributes"),
    "metric_statements": ("resource.attributes", "scope.attributes", "datapoint.attributes",
                          "exemplar.filtered_attributes"),
    "log_statements": ("resource.attributes", "scope.attributes", "log.attributes", "log.body"),
}
#: Free text outside attributes, which the redaction processor never reads.
TEXT_FIELDS = {
    "trace_statements": ("scope.name", "scope.version", "span.name", "span.status.message", "span.trace_state",
                         "spanevent.name"),
    "metric_statements": ("scope.name", "scope.version", "metric.name", "metric.description", "metric.unit"),
    "log_statements": ("scope.name", "scope.version", "log.event_name", "log.severity_text"),
}
#: Maps whose values the redaction processor does not check (so transform/scrub does).
UNREDACTED_MAPS = ("exemplar.filtered_attributes",)


def _scrub(cfg: dict) -> dict[str, list[str]]:
    """transform/scrub's statements per signal, "$$" unescaped."""
    scrub = cfg["processors"]["transform/scrub"]
    return {sig: [h.confmap_unescape(s) for g in scrub[sig] for s in g["statements"]] for sig in ATTRIBUTE_MAPS}


def _first_arg_regexes(statements: list[str], function: str, target: str) -> set[str]:
    prefix = f"{function}({target}, "
    out = set()
    for st in statements:
        if st.startswith(prefix):
            literals = h.ottl_string_literals(st)
            out.add(literals[1] if function == "replace_all_patterns" else literals[0])
    return out


def _value_shapes() -> set[str]:
    """redaction/openai's value patterns: the key shapes every text field must be scrubbed for."""
    return set(_blocked_values())


def _as_value_pattern(regex: str) -> str:
    """A replace_pattern regex without its leading capture group (kept for the replacement) = the redaction pattern."""
    return re.sub(r"^\((\w+\\s\+)\)", r"\1", regex)


@pytest.mark.parametrize("name", h.STANDALONE)
def test_scrub_reaches_every_context(name):
    """Every attribute map loses header attributes and names shaped like a key, every map that can carry the
    fingerprint's name gets the fingerprint shape check, and every text field outside attributes is scrubbed
    for each key shape redaction/openai masks in values."""
    per_signal = _scrub(h.load_config(name))
    header = next(p for st in per_signal["trace_statements"] for p in h.ottl_string_literals(st) if "header" in p)
    name_shapes = {header} | {p for p in _value_shapes() if "earer" not in p.lower()}
    for sig, maps in ATTRIBUTE_MAPS.items():
        statements = per_signal[sig]
        for m in maps:
            assert _first_arg_regexes(statements, "delete_matching_keys", m) == name_shapes, (sig, m)
            if m.endswith("attributes") and not m.startswith("exemplar"):
                fp = f'{m}["{contract.KEY_FINGERPRINT}"]'
                assert any(st.startswith(f'set({fp}, "****") where {fp} != nil and not IsMatch({fp}, ')
                           for st in statements), (sig, m)
        for field in TEXT_FIELDS[sig]:
            got = {_as_value_pattern(r) for r in _first_arg_regexes(statements, "replace_pattern", field)}
            assert got == _value_shapes(), (sig, field)
    for m in UNREDACTED_MAPS:
        got = {_as_value_pattern(r) for r in _first_arg_regexes(per_signal["metric_statements"],
                                                                "replace_all_patterns", m)}
        assert got == _value_shapes(), m


def test_fingerprint_shape_check_accepts_only_fingerprints():
    (st,) = [s for s in _scrub(h.load_config("base.yaml"))["trace_statements"]
             if s.startswith(f'set(span.attributes["{contract.KEY_FINGERPRINT}"]')]
    shape = re.compile(h.ottl_string_literals(st)[-1].replace("$", r"\Z"))
    for ok in (FINGERPRINT, contract.FINGERPRINT_OVERFLOW, "none"):
        assert shape.search(ok), ok
    # IsMatch reads a list or map as its JSON text, a number as its digits: none is a fingerprint
    for bad in SECRETS + HINTS + [FINGERPRINT.upper(), FINGERPRINT + "0", FINGERPRINT + "\n", "", "****",
                                  h.go_as_string([FINGERPRINT]), h.go_as_string({"a": FINGERPRINT}), "1234"]:
        assert not shape.search(bad), bad


def test_redaction_checks_values_of_every_type():
    """redact_all_types: a key in a string list, a map or a nested mix is masked (the value becomes its masked
    string form); values without a key keep their type."""
    for name in h.STANDALONE:
        (values,) = [r for r in _redaction_chain(h.load_config(name)) if r.get("blocked_values")]
        assert values["redact_all_types"] is True, name
        key = SECRETS[0]
        span = {contract.SCOPE_MISSING: [key, "api.threads.read"], "process.command_args": ["node", f"--key={key}"],
                "app.map": {"outer": [{"inner": SECRETS[6]}]}, "app.ok": ["a", "b"], contract.SCOPE_ERROR: True,
                contract.HTTP_STATUS: 401}
        out = h.redact(values, span)
        assert out[contract.SCOPE_MISSING] == '["****","api.threads.read"]'
        assert out["process.command_args"] == '["node","--key=****"]'
        assert out["app.map"] == '{"outer":[{"inner":"****"}]}'
        assert {k: out[k] for k in ("app.ok", contract.SCOPE_ERROR, contract.HTTP_STATUS)} == \
            {"app.ok": ["a", "b"], contract.SCOPE_ERROR: True, contract.HTTP_STATUS: 401}
        # the model is not vacuous: strings only (the shape shipped before) lets every one of them through
        before = {k: v for k, v in values.items() if k != "redact_all_types"}
        assert h.redact(before, span) == span


def _dimension_checks(cfg: dict) -> dict[str, str]:
    """Label -> the regex its value must match (from transform/scope_dimension's delete_key statements)."""
    out = {}
    for cid, st in h.ottl_statements(cfg):
        if cid == "transform/scope_dimension" and st.startswith("delete_key("):
            label, *_, regex = h.ottl_string_literals(h.confmap_unescape(st))
            out[label] = regex
    return out


@pytest.mark.parametrize("name", ["base.yaml", "gateway.yaml"])
def test_derived_scope_label_uses_the_sdks_scope_grammar(name):
    from otel_openai_scopes.scope_names import MAX_SCOPE_CHARS, is_scope_name

    cfg = h.load_config(name)
    checks = _dimension_checks(cfg)
    assert set(checks) == {contract.SCOPE, contract.DIAGNOSIS}
    (scope_st,) = [s for cid, s in h.ottl_statements(cfg) if cid == "transform/scope_dimension"
                   and s.startswith(f'delete_key(span.attributes, "{contract.SCOPE}")')]
    assert f'Len(span.attributes["{contract.SCOPE}"]) > {MAX_SCOPE_CHARS}' in scope_st
    grammar = re.compile(checks[contract.SCOPE].replace("$", r"\Z"))

    def collector_accepts(token: str) -> bool:
        return len(token) <= MAX_SCOPE_CHARS and bool(grammar.search(token))

    tokens = ["api.threads.read", "model.request", "vector_store.write", "a.b.c.d.e.f", "a.b.c.d.e.f.g", "api",
              "API.threads.read", "api.threads.read.", ".api.x", "api..x", "api.1x", "a" * 30 + "." + "b" * 33,
              "a" * 30 + "." + "b" * 34, "api.threads.read\n", SECRETS[0], "api.x y", "api.threads-read", ""]
    assert [t for t in tokens if collector_accepts(t) != is_scope_name(t)] == []


@settings(max_examples=500, deadline=None)
@given(hs.text(alphabet="abz09_.A-", max_size=80))
def test_derived_scope_label_grammar_agrees_with_the_sdk_on_random_tokens(token):
    from otel_openai_scopes.scope_names import MAX_SCOPE_CHARS, is_scope_name

    grammar = re.compile(_dimension_checks(h.load_config("base.yaml"))[contract.SCOPE].replace("$", r"\Z"))
    assert (len(token) <= MAX_SCOPE_CHARS and bool(grammar.search(token))) == is_scope_name(token)


def test_derived_diagnosis_label_admits_every_verdict_and_nothing_else():
    from otel_openai_scopes import verdicts

    grammar = re.compile(_dimension_checks(h.load_config("base.yaml"))[contract.DIAGNOSIS].replace("$", r"\Z"))
    for verdict in {*verdicts.ALL, *verdicts.MEANINGS}:
        assert grammar.search(verdict), verdict
    for bad in ("Unknown", "platform side", "x" * 33, SECRETS[0], "****", "unknown\n", ""):
        assert not grammar.search(bad), bad


@pytest.mark.parametrize("names", PROCESSING, ids=PROCESSING_IDS)
def test_derived_label_sets_are_capped(names):
    """The pipeline fed by signal_to_metrics ends in delta_to_cumulative/derived (max_streams, default 2000, the
    OpenTelemetry SDKs' default cardinality limit); the SDK metrics pipeline is not capped by it."""
    cfg = runnable(names)
    pipelines = cfg["service"]["pipelines"]
    (derived,) = [p for p in pipelines.values()
                  if any(h.component_type(r) == "signal_to_metrics" for r in p["receivers"])]
    assert derived["processors"][-1] == "delta_to_cumulative/derived"
    assert cfg["processors"]["delta_to_cumulative/derived"]["max_streams"] == "${env:DERIVED_MAX_SERIES:-2000}"
    assert all("delta_to_cumulative/derived" not in p["processors"] for p in pipelines.values() if p is not derived)


@pytest.mark.parametrize("name", h.STANDALONE)
def test_logs_are_scrubbed_like_traces(name):
    pipelines = h.load_config(name)["service"]["pipelines"]
    assert pipelines["logs"]["receivers"] == ["otlp"]
    assert pipelines["logs"]["processors"] == pipelines["traces"]["processors"]


def test_every_value_pattern_starts_with_a_literal():
    """Go's regexp searches a literal prefix with a fast substring search; a pattern without one ((?i), a class,
    an alternation) runs its matcher at every position of every value: the case-insensitive bearer pattern alone
    cost 10 us of CPU per span (benchmarks/README.md). Bearer is therefore matched in its three usual casings."""
    for pattern in _value_shapes():
        assert re.match(r"[A-Za-z-]{3,}", pattern), pattern
    bearers = {p.split("\\s+")[0] for p in _value_shapes() if "earer" in p.lower()}
    assert bearers == {"Bearer", "bearer", "BEARER"}
    patterns = [re.compile(p) for p in _value_shapes()]
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert any(p.search(f"Authorization: {scheme} abcdEFGH1234") for p in patterns), scheme
