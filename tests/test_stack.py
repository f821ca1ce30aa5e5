"""End to end through real processes: an instrumented app (real openai SDK against the fake server) ->
Collector v0.161.0 (collector-config/base.yaml + jaeger.yaml) -> Jaeger v2 (traces) and Prometheus 2.42
(scrapes the Collector's prometheus exporter, evaluates the shipped alert rules).

One scenario, in phases, drives everything: healthy traffic, a flap (the key loses api.threads.read for a
while: scope_flapping), an app bug (a shared client's key swapped for a restricted one: client_mutated) and a
restricted key that never had the scope (never_granted). Alerts are observed in Prometheus during each phase;
the Jaeger and Prometheus contents are then compared with what the app exported (an in-memory copy of
every span and metric the app sent). A second app sends a hostile span to prove redaction at the backend.

Binaries: tests/stack.py (`bash scripts/stack.sh build`); missing -> skip, with CI set -> fail.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import collector_helpers as h
import openai
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import attributes as A
from otel_openai_scopes.fingerprint import hint
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key
from tests.support.telemetry import Telemetry

SERVICE = "stack-e2e-app"
APP_INSTANCE = "app-instance-1"
THREAD = "thread_stack"
READ = "api.threads.read"
RULES = h.ALERTS_DIR / "prometheus-rules.yaml"
SPIKE, MUTATED, NEVER = "OpenAIScopeErrorSpike", "OpenAIScopeErrorClientMutated", "OpenAIScopeNeverGranted"


# ---------------------------------------------------------------------------------------------------
# The stack (module scope: started once, about 2 s)
# ---------------------------------------------------------------------------------------------------


def fast_rules(src: Path, dst: Path) -> Path:
    """A test copy of the shipped rules: group interval 1s and every `for:` 2s; expressions untouched."""
    doc = yaml.safe_load(src.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    dst.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


@dataclass
class Stack:
    jaeger: stack.Jaeger
    collector: stack.Collector
    prometheus: stack.Prometheus
    rules: Path


@pytest.fixture(scope="module")
def real_stack(tmp_path_factory):
    bins = stack.require_binaries()
    work = tmp_path_factory.mktemp("stack")
    started: list[Any] = []
    try:
        jaeger = stack.Jaeger.start(bins, work)
        started.append(jaeger)
        # `detailed` (the documented debugging level, not the default): debug/anomalies then prints every
        # scope-error span in full, the most the Collector's log can expose (test_no_piece_of_a_key_...)
        collector = stack.Collector.start(bins, work, ["base.yaml", "jaeger.yaml"],
                                          env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc,
                                               "ANOMALY_LOG_VERBOSITY": "detailed"})
        started.append(collector)
        rules = fast_rules(RULES, work / "rules-fast.yaml")
        prometheus = stack.Prometheus.start(bins, work, scrape=[collector.prometheus_exporter], rules=[rules],
                                            scrape_interval="1s", evaluation_interval="1s")
        started.append(prometheus)
        yield Stack(jaeger, collector, prometheus, rules)
    finally:
        for proc in reversed(started):
            proc.stop()


# ---------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------


def start_app(endpoint: str, service: str, extra_resource: dict[str, str] | None = None) -> Telemetry:
    """Real OTel SDK providers exporting over OTLP/gRPC to the Collector, plus an in-memory copy of every span and
    metric point sent (what "the app exported" means below), and the instrumentation on."""
    app = Telemetry(resource={"service.name": service, "service.instance.id": APP_INSTANCE, **(extra_resource or {})},
                    otlp=endpoint)
    app.instrument()
    return app


@dataclass
class Scenario:
    app: Telemetry
    keys: dict[str, str]
    exported: list[Any] = field(default_factory=list)  # ReadableSpans the app sent
    alerts: dict[str, list[dict]] = field(default_factory=dict)  # phase -> active alerts seen
    sent_before: dict[str, float] = field(default_factory=dict)
    sent_after: dict[str, float] = field(default_factory=dict)


def _active(prom: stack.Prometheus) -> list[dict]:
    return [a for a in prom.alerts() if a["state"] in ("pending", "firing")]


def _wait_firing(prom: stack.Prometheus, name: str, timeout: float, **labels: str) -> list[dict]:
    """Active alerts at the moment `name` fires with these labels (or after timeout: whatever is active)."""
    def check() -> list[dict] | None:
        active = _active(prom)
        hit = [a for a in active if a["labels"]["alertname"] == name and a["state"] == "firing"
               and all(a["labels"].get(k) == v for k, v in labels.items())]
        return active if hit else None

    try:
        return stack.wait_until(check, timeout=timeout, interval=0.5, what=f"{name} firing")
    except AssertionError:
        return _active(prom)


SENT = 'otelcol_exporter_sent_spans'


def _sent_spans(col: stack.Collector) -> dict[str, float]:
    """The Collector's own counter of spans each exporter sent (debug/anomalies = after filter/scope_errors)."""
    out: dict[str, float] = {}
    for line in stack.http_get(col.telemetry_url).decode().splitlines():
        m = re.match(SENT + r'(?:_total)?\{(.*)\} (\S+)$', line)
        if m:
            exporter = re.search(r'exporter="([^"]+)"', m.group(1))
            if exporter:
                out[exporter.group(1)] = out.get(exporter.group(1), 0.0) + float(m.group(2))
    return out


@pytest.fixture(scope="module")
def scenario(real_stack):
    prom, col = real_stack.prometheus, real_stack.collector
    main_key, tenant_key, restricted_key = make_key(), make_key(), make_key()
    with FakeOpenAI() as fake:
        fake.grant(main_key)
        fake.grant(tenant_key, scopes=["model.request", "api.model.request"])
        fake.grant(restricted_key, scopes=["model.request", "api.model.request"])
        stack.wait_until(lambda: _sent_spans(col) is not None, what="collector telemetry")
        sent_before = _sent_spans(col)
        app = start_app(col.otlp_grpc, SERVICE)
        sc = Scenario(app, {"main": main_key, "tenant": tenant_key, "restricted": restricted_key},
                      sent_before=sent_before)
        shared = openai.OpenAI(api_key=main_key, base_url=fake.base_url, max_retries=0)
        other = openai.OpenAI(api_key=main_key, base_url=fake.base_url, max_retries=0)
        try:
            # 1. healthy traffic: 18 successful calls, then ~5 rule evaluations after Prometheus has them
            for i in range(6):
                shared.beta.threads.runs.list(THREAD)
                other.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                shared.beta.threads.messages.create(THREAD, role="user", content=f"m{i}")
            stack.wait_until(lambda: prom.value(f'sum(openai_client_requests_total{{job="{SERVICE}"}})') >= 18,
                             timeout=30, what="healthy requests in Prometheus")
            time.sleep(5)
            sc.alerts["healthy"] = _active(prom)

            # 2. flap: the key loses api.threads.read for both clients. One error first, so the series exists
            # in Prometheus at a low value (increase() needs two samples), then 11 more over ~2 s.
            fake.lose_scope(main_key, READ, duration=600)
            with pytest.raises(openai.AuthenticationError):
                shared.beta.threads.runs.list(THREAD)
            stack.wait_until(lambda: prom.query(f'openai_client_scope_errors_total{{job="{SERVICE}"}}'),
                             timeout=30, what="first scope error in Prometheus")
            for client in [other, shared] * 5 + [other]:
                with pytest.raises(openai.AuthenticationError):
                    client.beta.threads.runs.list(THREAD)
                time.sleep(0.2)
            main_fp = next(s for s in app.spans() if s.attributes.get(A.SCOPE_ERROR)) \
                .attributes[A.KEY_FINGERPRINT]
            sc.alerts["flap"] = _wait_firing(prom, SPIKE, 40, openai_key_fingerprint=main_fp, openai_scope=READ)
            fake.windows.clear()  # the platform recovers

            # 3. app bug: a task swaps the shared client's key for the tenant's; the other client keeps working
            other.beta.threads.runs.list(THREAD)
            shared.api_key = tenant_key
            for _ in range(4):
                with pytest.raises(openai.AuthenticationError):
                    shared.beta.threads.runs.list(THREAD)
                other.beta.threads.runs.list(THREAD)
                time.sleep(0.2)
            sc.alerts["app_bug"] = _wait_firing(prom, MUTATED, 40, job=SERVICE)

            # 4. a restricted key that never had the scope: 2 x unknown, then never_granted. The rule uses
            # increase() only, so (as for the flap) the series must exist before it grows: 1 first, then 3 more.
            restricted = openai.OpenAI(api_key=restricted_key, base_url=fake.base_url, max_retries=0)
            restricted.chat.completions.create(model="gpt-4o-mini", messages=[])
            for _ in range(3):
                with pytest.raises(openai.AuthenticationError):
                    restricted.beta.threads.runs.list(THREAD)
            stack.wait_until(lambda: prom.query(f'openai_client_scope_errors_total{{job="{SERVICE}",'
                                                f'openai_scope_error_diagnosis="{A.DIAGNOSIS_NEVER_GRANTED}"}}'),
                             timeout=30, what="first never_granted error in Prometheus")
            for _ in range(3):
                with pytest.raises(openai.AuthenticationError):
                    restricted.beta.threads.runs.list(THREAD)
                time.sleep(0.3)
            sc.alerts["never_granted"] = _wait_firing(prom, NEVER, 40, job=SERVICE)
        finally:
            app.close()
        sc.exported = list(app.spans())
        want = len(sc.exported)
        stack.wait_until(lambda: len(real_stack.jaeger.find_spans(SERVICE)) >= want, timeout=30,
                         what=f"{want} spans in Jaeger")
        stack.wait_until(lambda: _sent_spans(col).get("otlp_grpc/main", 0) - sent_before.get("otlp_grpc/main", 0)
                         >= want, timeout=30, what="collector sent counters")
        sc.sent_after = _sent_spans(col)
        yield sc


# ---------------------------------------------------------------------------------------------------
# Alerts (first: the "healthy" observation must see a Prometheus with no alert at all)
# ---------------------------------------------------------------------------------------------------


def _names(alerts: list[dict], state: str | None = None) -> set[str]:
    return {a["labels"]["alertname"] for a in alerts if state is None or a["state"] == state}


def test_test_rules_keep_the_shipped_expressions(real_stack):
    shipped = yaml.safe_load(RULES.read_text())
    fast = yaml.safe_load(real_stack.rules.read_text())
    pairs = list(zip([r for g in shipped["groups"] for r in g["rules"]],
                     [r for g in fast["groups"] for r in g["rules"]]))
    assert pairs and all(a["expr"] == b["expr"] and a["alert"] == b["alert"] and a["labels"] == b["labels"]
                         for a, b in pairs)
    loaded = real_stack.prometheus.rules()
    assert {r["name"] for r in loaded} == {a["alert"] for a, _ in pairs}
    assert all(r["health"] in ("ok", "unknown") for r in loaded), [(r["name"], r.get("lastError")) for r in loaded]


def test_no_alert_with_healthy_traffic(scenario):
    assert scenario.alerts["healthy"] == []


def test_spike_alert_fires_during_the_flap_and_client_mutated_does_not(scenario):
    alerts = scenario.alerts["flap"]
    assert SPIKE in _names(alerts, "firing"), alerts
    assert MUTATED not in _names(alerts), "no client was mutated yet"
    (spike,) = [a for a in alerts if a["labels"]["alertname"] == SPIKE and a["state"] == "firing"]
    assert spike["labels"]["openai_scope"] == READ and spike["labels"]["severity"] == "warning"


def test_client_mutated_alert_fires_during_the_app_bug(scenario):
    alerts = scenario.alerts["app_bug"]
    hits = [a for a in alerts if a["labels"]["alertname"] == MUTATED and a["state"] == "firing"]
    assert hits, alerts
    tenant_fp = _fingerprint_of(scenario, A.DIAGNOSIS_CLIENT_MUTATED)
    assert {a["labels"]["openai_key_fingerprint"] for a in hits} == {tenant_fp}
    # one alert per service and key (issue 14): the scopes are listed in the description
    assert all(a["labels"]["job"] == SERVICE and READ in a["annotations"]["description"] for a in hits)


def test_never_granted_alert_fires_for_the_restricted_key(scenario):
    hits = [a for a in scenario.alerts["never_granted"] if a["labels"]["alertname"] == NEVER and a["state"] == "firing"]
    restricted_fp = _fingerprint_of(scenario, A.DIAGNOSIS_NEVER_GRANTED)
    assert {a["labels"]["openai_key_fingerprint"] for a in hits} == {restricted_fp}


def test_spike_fires_for_a_burst_in_the_first_export_of_a_new_series(real_stack, scenario):
    """The demo's case: a short process whose whole burst reaches Prometheus in one export. increase() sees a
    flat series; the rule's new-series term (`X unless X offset 5m`) counts it (measured: without it the
    demo's flap never raised the spike)."""
    col, prom = real_stack.collector, real_stack.prometheus
    service, key = "stack-burst-app", make_key()
    resource = Resource.create({"service.name": service, "service.instance.id": "burst-1"})
    tracer_provider = TracerProvider(resource=resource)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=col.otlp_grpc, insecure=True),
                                           export_interval_millis=600_000)  # one export: the flush at close
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    instrumentor = OpenAIScopesInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with FakeOpenAI() as fake:
            fake.grant(key)
            client = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
            client.beta.threads.runs.list(THREAD)
            fake.lose_scope(key, READ, duration=600)
            for _ in range(6):
                with pytest.raises(openai.AuthenticationError):
                    client.beta.threads.runs.list(THREAD)
    finally:
        instrumentor.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
    query = f'sum(openai_client_scope_errors_total{{job="{service}"}})'
    stack.wait_until(lambda: prom.value(query) == 6, timeout=30, what="the burst in Prometheus")
    assert prom.value(f'sum(increase(openai_client_scope_errors_total{{job="{service}"}}[5m]))') == 0, \
        "the burst must arrive in the series' first sample (else this does not test the new-series term)"
    (fp,) = {s["openai_key_fingerprint"] for s in prom.series(f'openai_client_scope_errors_total{{job="{service}"}}')}
    alerts = _wait_firing(prom, SPIKE, 40, openai_key_fingerprint=fp, openai_scope=READ)
    assert any(a["labels"]["alertname"] == SPIKE and a["state"] == "firing"
               and a["labels"]["openai_key_fingerprint"] == fp for a in alerts), alerts


def _fingerprint_of(sc: Scenario, diagnosis: str) -> str:
    (fp,) = {s.attributes[A.KEY_FINGERPRINT] for s in sc.exported if s.attributes.get(A.DIAGNOSIS) == diagnosis}
    return str(fp)


# ---------------------------------------------------------------------------------------------------
# Jaeger: what a user finds searching service + tag openai.scope_error=true
# ---------------------------------------------------------------------------------------------------


def _jaeger_tag(value: Any) -> tuple[str, Any]:
    """How Jaeger's OTLP translation shows an attribute value: (type, value); arrays become JSON strings."""
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int):
        return "int64", value
    if isinstance(value, float):
        return "float64", value
    if isinstance(value, str):
        return "string", value
    return "string", json.dumps(list(value), separators=(",", ":"))


def test_every_scope_error_span_is_in_jaeger_by_tag(real_stack, scenario):
    exported = {format(s.context.span_id, "016x"): s for s in scenario.exported if s.attributes.get(A.SCOPE_ERROR)}
    found = real_stack.jaeger.find_spans(SERVICE, {A.SCOPE_ERROR: "true"})
    assert len(found) == len(exported) == 1 + 11 + 4 + 6
    assert {s.span_id for s in found} == set(exported)
    diagnoses = [s.tags[A.DIAGNOSIS][1] for s in found]
    expected = ((A.DIAGNOSIS_SCOPE_FLAPPING, 12), (A.DIAGNOSIS_CLIENT_MUTATED, 4), (A.DIAGNOSIS_NEVER_GRANTED, 4))
    for diagnosis, n in expected:
        assert diagnoses.count(diagnosis) == n, (diagnosis, sorted(diagnoses))
    assert diagnoses.count(A.DIAGNOSIS_UNKNOWN) == 2


def test_every_contract_attribute_survives_with_its_type(real_stack, scenario):
    by_id = {s.span_id: s for s in real_stack.jaeger.find_spans(SERVICE)}
    checked: set[str] = set()
    for span in scenario.exported:
        got = by_id[format(span.context.span_id, "016x")]
        for key in A.SPAN_ATTRIBUTES:
            if key in span.attributes:
                assert got.tags.get(key) == _jaeger_tag(span.attributes[key]), (span.name, key)
                checked.add(key)
        # Jaeger shows an event's name as the field "event"; redaction (summary: info) adds redaction.* counts
        assert [(e["event"][1], {k: v for k, v in e.items() if k != "event" and not k.startswith("redaction.")})
                for e in got.events] == \
            [(e.name, {k: _jaeger_tag(v) for k, v in e.attributes.items()}) for e in span.events], span.name
        assert got.service == SERVICE
    # the attributes that carry the diagnosis were all seen at least once
    assert {A.SCOPE_ERROR, A.SCOPE_MISSING, A.KEY_FINGERPRINT, A.KEY_HINT, A.DIAGNOSIS, A.CLIENT_ID,
            A.CLIENT_MUTATED, A.DIAGNOSIS_FAILING_CLIENTS, A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT,
            A.HTTP_STATUS} <= checked


def test_healthy_spans_are_in_jaeger_too(real_stack, scenario):
    healthy = {format(s.context.span_id, "016x") for s in scenario.exported if not s.attributes.get(A.SCOPE_ERROR)}
    found = {s.span_id: s for s in real_stack.jaeger.find_spans(SERVICE)}
    assert len(healthy) == 18 + 1 + 4 + 1 and healthy <= set(found)
    assert len(found) == len(scenario.exported)
    assert all(found[i].tags[A.HTTP_STATUS] == ("int64", 200) for i in healthy)


def test_collector_filter_passes_exactly_the_scope_errors_to_the_anomaly_exporter(scenario):
    """forward/scope_errors + filter/scope_errors: debug/anomalies sent exactly the scope-error spans,
    otlp_grpc/main every span (the Collector's own otelcol_exporter_sent_spans counters)."""
    delta = {k: scenario.sent_after.get(k, 0) - scenario.sent_before.get(k, 0) for k in scenario.sent_after}
    n_scope = sum(1 for s in scenario.exported if s.attributes.get(A.SCOPE_ERROR))
    assert delta["debug/anomalies"] == n_scope == 22
    assert delta["otlp_grpc/main"] == len(scenario.exported)


# ---------------------------------------------------------------------------------------------------
# Prometheus: the documented series and labels
# ---------------------------------------------------------------------------------------------------

# openai.organization / openai.project are labels only when the call sent those headers (this scenario does not).
DOCUMENTED_LABELS = {h.prom_label_name(a) for a in A.SCOPE_ERROR_METRIC_ATTRIBUTES
                     if a not in (A.ORGANIZATION, A.PROJECT)} | {"job", "instance"}
#: Labels the prometheus exporter / redaction processor add (documented in collector-config/README.md).
ADDED_LABELS = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}


def test_documented_series_and_labels(real_stack, scenario):
    prom = real_stack.prometheus
    names = {s["__name__"] for s in prom.series(f'{{job="{SERVICE}"}}')}
    assert set(h.prom_series_names()) <= names, set(h.prom_series_names()) - names
    readme = (h.CONFIG_DIR / "README.md").read_text()
    for series in prom.series(f'openai_client_scope_errors_total{{job="{SERVICE}"}}'):
        labels = set(series) - {"__name__"}
        assert labels >= DOCUMENTED_LABELS, DOCUMENTED_LABELS - labels
        extra = labels - DOCUMENTED_LABELS
        assert extra <= ADDED_LABELS | {"redaction_ignored_count"}, extra
        assert all(f"`{x}`" in readme or x.startswith("otel_scope_") for x in extra), extra
        assert series["instance"] == APP_INSTANCE and not any("client" in x for x in labels)


def test_sdk_counters_in_prometheus_equal_what_the_app_exported(real_stack, scenario):
    prom, app = real_stack.prometheus, scenario.app
    for diagnosis in (A.DIAGNOSIS_SCOPE_FLAPPING, A.DIAGNOSIS_CLIENT_MUTATED, A.DIAGNOSIS_NEVER_GRANTED):
        want = app.metric_sum(A.METRIC_SCOPE_ERRORS, {A.DIAGNOSIS: diagnosis})
        assert want > 0
        expr = f'sum(openai_client_scope_errors_total{{job="{SERVICE}",openai_scope_error_diagnosis="{diagnosis}"}})'
        stack.wait_until(lambda e=expr, w=want: prom.value(e) == w, timeout=20, what=f"{expr} == {want}")
    want = app.metric_sum(A.METRIC_REQUESTS)
    stack.wait_until(lambda: prom.value(f'sum(openai_client_requests_total{{job="{SERVICE}"}})') == want,
                     timeout=20, what="requests total")


def test_span_derived_counter_has_the_collector_as_its_writer(real_stack, scenario):
    """signal_to_metrics counts every scope-error span, labelled instance = the Collector's own id
    (signal_to_metrics.service.instance.id: the fixed name), never the app's instance."""
    prom = real_stack.prometheus
    expr = f'openai_client_scope_errors_spans_total{{job="{SERVICE}"}}'
    stack.wait_until(lambda: prom.value(expr) == 22, timeout=20, what=f"{expr} == 22")
    by_diag = {r["metric"]["openai_scope_error_diagnosis"]: float(r["value"][1])
               for r in prom.query(f"sum by (openai_scope_error_diagnosis) ({expr})")}
    assert by_diag == {A.DIAGNOSIS_SCOPE_FLAPPING: 12, A.DIAGNOSIS_CLIENT_MUTATED: 4,
                       A.DIAGNOSIS_NEVER_GRANTED: 4, A.DIAGNOSIS_UNKNOWN: 2}
    instances = {r["metric"]["instance"] for r in prom.query(expr)}
    writer = {r["metric"].get("signal_to_metrics_service_instance_id") for r in prom.query("target_info")} - {None}
    assert len(instances) == 1 and instances == writer and APP_INSTANCE not in instances
    assert {r["metric"]["openai_scope"] for r in prom.query(expr)} == {READ}


# ---------------------------------------------------------------------------------------------------
# Redaction at the backend
# ---------------------------------------------------------------------------------------------------


def test_no_piece_of_a_key_reaches_jaeger(real_stack):
    col, jaeger, prom = real_stack.collector, real_stack.jaeger, real_stack.prometheus
    service = "stack-hostile-app"
    key = make_key()
    bearer = make_key(prefix="", n=40)
    with FakeOpenAI() as fake:
        fake.grant(key, scopes=["model.request"])
        app = start_app(col.otlp_grpc, service, extra_resource={"deployment.token": key})
        try:
            client = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
            tracer = app.tracer_provider.get_tracer("hostile")
            with tracer.start_as_current_span("hostile-handler") as span:
                span.set_attribute("openai.api_key", key)
                span.set_attribute("http.request.header.authorization", f"Bearer {key}")
                span.set_attribute("authorization", f"Bearer {bearer}")
                span.set_attribute("app.note", f"calling with {key} and Bearer {bearer}")
                span.add_event("retry", {"message": f"retrying with {key}", "detail": f"Bearer {bearer}"})
                span.record_exception(RuntimeError(f"Incorrect API key provided: {key}"))
                span.set_status(Status(StatusCode.ERROR, f"401 for {key} (Authorization: Bearer {bearer})"))
                with pytest.raises(openai.AuthenticationError):
                    client.beta.threads.runs.list(THREAD)
            # a scope-error span (so debug/anomalies prints it at `detailed`) with the key where the redaction
            # processor does not look: span name, event name, attribute names, and the fingerprint attribute
            # (exempt from redaction, and a metric label through signal_to_metrics)
            with tracer.start_as_current_span(f"hostile-scope-error {key} Bearer {bearer}") as span:
                span.set_attribute(A.SCOPE_ERROR, True)
                span.set_attribute(A.SCOPE_MISSING, [READ])
                span.set_attribute(A.KEY_FINGERPRINT, key)
                span.set_attribute(f"app.by_key.{key}", "x")
                span.add_event(f"retry {key}", {f"app.{key}": "x"})
            counter = app.meter_provider.get_meter("hostile").create_counter("app.hostile", description=f"for {key}")
            counter.add(1, {A.KEY_FINGERPRINT: key, f"app.{key}": "x"})
        finally:
            app.close()
    exported = list(app.spans())
    assert len(exported) == 3
    # positive control: the app really exported the secrets
    sent = json.dumps([s.to_json() for s in exported]) + json.dumps(dict(exported[0].resource.attributes))
    assert key in sent and bearer in sent

    stack.wait_until(lambda: len(jaeger.find_spans(service)) == 3, timeout=30, what="hostile spans in Jaeger")
    stack.wait_until(lambda: prom.series(f'app_hostile_total{{job="{service}"}}'), timeout=30, what="hostile metric")
    stack.wait_until(lambda: "hostile-scope-error" in col.log(), timeout=30, what="the anomaly printout")
    traces = jaeger.traces(service)
    blobs = [jaeger.raw(jaeger.search_path(service)), jaeger.raw("/api/services"),
             jaeger.raw(f"/api/services/{service}/operations")]
    blobs += [jaeger.raw(f"/api/traces/{t['traceID']}") for t in traces]
    blobs.append(json.dumps(prom.series(f'{{job="{service}"}}')).encode())
    blobs += [jaeger.raw(f"/api/v3/traces/{t['traceID']}") for t in traces]  # OTLP JSON: every field kept
    blobs += [json.dumps(prom.api(f"label/{name}/values")).encode() for name in prom.api("labels")]
    blobs += [json.dumps(prom.api("metadata")).encode(), stack.http_get(f"http://{col.prometheus_exporter}/metrics")]
    blobs.append(col.log().encode())  # debug/anomalies at `detailed` (set by real_stack) prints the whole span
    everything = b"\n".join(blobs).decode()
    instrumented = next(s for s in exported if s.attributes.get(A.SCOPE_ERROR))
    key_hint = instrumented.attributes[A.KEY_HINT]
    assert key_hint == hint(key)
    leaked = sorted(p for p in h.secret_pieces(key, key_hint) | h.secret_pieces(bearer) if p in everything)
    assert leaked == []

    spans = {s.operation: s for s in jaeger.find_spans(service)}
    got = spans[instrumented.name]
    assert got.tags[A.KEY_FINGERPRINT] == ("string", instrumented.attributes[A.KEY_FINGERPRINT])
    assert got.tags[A.KEY_HINT] == ("string", key_hint)
    hostile = spans["hostile-handler"]
    assert "http.request.header.authorization" not in hostile.tags, "deleted by transform/scrub"
    assert hostile.tags["openai.api_key"] == ("string", "****") and hostile.tags["authorization"] == ("string", "****")
    assert "sk-****" in hostile.tags["otel.status_description"][1]
    assert sorted(e["event"][1] for e in hostile.events) == ["exception", "retry"]  # Jaeger's order varies
    (scope_error,) = [s for s in spans.values() if s.operation.startswith("hostile-scope-error")]
    assert scope_error.operation == "hostile-scope-error sk-**** Bearer ****"
    assert scope_error.tags[A.KEY_FINGERPRINT] == ("string", "****"), "not a fingerprint: replaced"
    assert not any(k.startswith("app.by_key.") for k in scope_error.tags), "an attribute named after a key: deleted"


# ---------------------------------------------------------------------------------------------------
# Filter semantics on the real binary
# ---------------------------------------------------------------------------------------------------


def _send_flagged_spans(endpoint: str, service: str) -> None:
    """3 scope-error spans, one with openai.scope_error = false, one without the attribute."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    tracer = provider.get_tracer("filter-check")
    for flag in (True, True, True, False, None):
        with tracer.start_as_current_span("call") as span:
            if flag is not None:
                span.set_attribute(A.SCOPE_ERROR, flag)
    provider.shutdown()


def _anomalies_sent(col: stack.Collector, before: float, n_total: int) -> float:
    stack.wait_until(lambda: _sent_spans(col).get("otlp_grpc/main", 0) >= n_total, timeout=30, what="spans sent")
    return _sent_spans(col).get("debug/anomalies", 0) - before


def test_filter_drops_what_is_not_a_scope_error_and_an_inverted_condition_is_caught(real_stack, tmp_path):
    """Filter conditions say what to DROP. The shipped `not (... == true)` passes exactly the 3 scope errors
    to the anomaly pipeline; the tempting keep-style condition (without `not`) passes the other 2 instead."""
    col = real_stack.collector
    before = _sent_spans(col)
    _send_flagged_spans(col.otlp_grpc, "stack-filter-shipped")
    assert _anomalies_sent(col, before.get("debug/anomalies", 0), before.get("otlp_grpc/main", 0) + 5) == 3

    cfg = yaml.safe_load((h.CONFIG_DIR / "base.yaml").read_text())
    (cond,) = cfg["processors"]["filter/scope_errors"]["traces"]["span"]
    cfg["processors"]["filter/scope_errors"]["traces"]["span"] = [cond.replace("not (", "(")]
    mutated = tmp_path / "base-inverted-filter.yaml"
    mutated.write_text(yaml.safe_dump(cfg, sort_keys=False))
    bins = stack.require_binaries("otelcol")
    with stack.Collector.start(bins, tmp_path, [mutated, "jaeger.yaml"], name="otelcol-inverted",
                               env={"JAEGER_OTLP_ENDPOINT": real_stack.jaeger.otlp_grpc}) as wrong:
        _send_flagged_spans(wrong.otlp_grpc, "stack-filter-inverted")
        assert _anomalies_sent(wrong, 0, 5) == 2


def _derived_series(col: stack.Collector) -> list[str]:
    text = stack.http_get(f"http://{col.prometheus_exporter}/metrics").decode()
    return [line for line in text.splitlines() if line.startswith("openai_client_scope_errors_spans_total{")]


@pytest.mark.parametrize("attribute", ["signal_to_metrics.service.instance.id", "signaltometrics.service.instance.id"],
                         ids=["shipped", "old-name"])
def test_derived_series_writer_id_only_with_the_current_attribute_name(real_stack, tmp_path, attribute):
    """Issue 8's second fault, on the real binary: with the old attribute name the `where` never matches and
    the derived series carry no instance of their own (replicas would collide); with the shipped name the
    instance label is the Collector's id (the resource attribute signal_to_metrics adds)."""
    cfg = yaml.safe_load((h.CONFIG_DIR / "base.yaml").read_text())
    (st,) = cfg["processors"]["transform/derived_metrics_writer"]["metric_statements"][0]["statements"]
    assert "signal_to_metrics.service.instance.id" in st
    cfg["processors"]["transform/derived_metrics_writer"]["metric_statements"][0]["statements"] = [
        st.replace("signal_to_metrics.service.instance.id", attribute)]
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    bins = stack.require_binaries("otelcol")
    with stack.Collector.start(bins, tmp_path, [path, "jaeger.yaml"], name="otelcol-writer",
                               env={"JAEGER_OTLP_ENDPOINT": real_stack.jaeger.otlp_grpc}) as col:
        _send_flagged_spans(col.otlp_grpc, "stack-writer-check")  # resources without service.instance.id
        (line,) = stack.wait_until(lambda: _derived_series(col), timeout=30, what="derived series")
        target = [x for x in stack.http_get(f"http://{col.prometheus_exporter}/metrics").decode().splitlines()
                  if x.startswith("target_info{")]
    instance = re.search(r'\binstance="([^"]*)"', line)
    if attribute.startswith("signal_to_metrics."):
        writer = re.search(r'signal_to_metrics_service_instance_id="([^"]+)"', "\n".join(target))
        assert writer and instance and instance.group(1) == writer.group(1), (line, target)
    else:  # no writer id: every replica would write this very series
        assert not instance or instance.group(1) == "", line


def test_shipped_pipeline_starts_without_deprecation_or_rewrite_notices(real_stack):
    """v0.161.0 warns about deprecated type aliases (deltatocumulative) and logs OTTL paths it had to prefix
    with their context; the shipped configs trigger neither."""
    log = real_stack.collector.log()
    assert "Everything is ready" in log
    assert "deprecated" not in log.lower(), [x for x in log.splitlines() if "deprecated" in x.lower()]
    assert "please rewrite them" not in log
