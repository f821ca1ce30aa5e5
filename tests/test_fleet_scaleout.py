"""Scale-out on the real Collector (issue 9): apps -> agent (agent.yaml) -> two gateways (gateway.yaml +
jaeger.yaml) -> Jaeger, derived metrics -> Prometheus. A test overlay swaps the agent's DNS resolver for a
static list of the two gateways (loopback has no headless Service), shortens the gateways' tail-sampling
decision_wait and records what each gateway receives (a file exporter beside the shipped exporters).

Checked: every trace arrives whole on exactly one gateway; every trace with a scope error is in Jaeger
with all its spans; healthy traces are kept at TRACE_SAMPLING_PERCENTAGE within a binomial bound; the two
gateways' span-derived series carry distinct ``instance`` labels and add up to the scope-error spans; the
apps' own metric series are spread over both gateways by stream, none served by both.

Waits poll for readiness (the gateways' own telemetry: every trace decided, export queue empty, Jaeger holding
every span they sent) under one generous bound (``PATIENCE``): on a loaded machine the pipeline is slow, not
wrong, and what is asserted once it is drained does not depend on how long that took.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any, Callable

import fleet_helpers as fh

from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key

SAMPLING_PERCENT = 25
TRACES_PER_APP = 375
SCOPE_ERROR_EVERY = 5  # every 5th trace ends with a scope error: 20%
CALLS_PER_TRACE = 3  # plus the parent "job" span
PATIENCE = 300.0  # seconds: the bound of every wait (each polls for readiness and returns as soon as it holds)
JAEGER_EXPORTER = "otlp_grpc/main"


class NotYet(Exception):
    """A readiness check that does not hold yet, saying why (wait_until shows the last one on timeout)."""


def drained(gateways: list, arrived: list[dict[str, int]], kept: Callable[[], dict[str, int]],
            steady: float = 3.0) -> Callable[[], bool]:
    """A readiness check: each gateway decided every trace it received and has nothing left in its export queue,
    Jaeger holds every span the gateways sent it, and that stays so for ``steady`` seconds (longer than the
    exporter's batch flush and the tail sampler's tick): then what is in Jaeger is final."""
    seen: dict[str, Any] = {}

    def check() -> bool:
        for n, (g, traces) in enumerate(zip(gateways, arrived), 1):
            received = g.own_metric("otelcol_processor_tail_sampling_new_trace_id_received")
            decided = g.own_metric("otelcol_processor_tail_sampling_global_count_traces_sampled")
            queued = g.own_metric("otelcol_exporter_queue_size", exporter=JAEGER_EXPORTER)
            if received < len(traces) or decided < received or queued:
                raise NotYet(f"gateway {n}: {len(traces)} traces arrived, {received:.0f} received by tail sampling, "
                             f"{decided:.0f} decided, {queued:.0f} batches queued for Jaeger")
        sent = sum(g.own_metric("otelcol_exporter_sent_spans", exporter=JAEGER_EXPORTER) for g in gateways)
        stored = sum(kept().values())
        if stored != sent:
            raise NotYet(f"Jaeger holds {stored} spans of the {sent:.0f} the gateways sent")
        now = time.monotonic()
        if seen.get("snapshot") != (sent, stored):
            seen.update(snapshot=(sent, stored), since=now)
        if now - seen["since"] < steady:
            raise NotYet(f"drained ({stored} spans in Jaeger); checking that it stays so")
        return True

    return check


def gateway_overlay(arrivals: str) -> dict:
    return {
        # Shorter than the shipped 60 s, but longer than a trace takes on a loaded machine: a decision made before a
        # trace's last spans arrive drops them (a 2 s wait lost a scope-error span that came 2.9 s after the
        # trace's first spans, the app's first threads call being slow under load).
        "processors": {"tail_sampling": {"decision_wait": "15s"}},
        "exporters": {"file/arrivals": {"path": arrivals, "flush_interval": "100ms"}},
        "service": {"pipelines": {"traces": {
            "exporters": ["forward/sampling", "forward/scope_errors", "file/arrivals"]}}},
    }


def agent_overlay(gateways: list[str]) -> dict:
    # Maps merge: "dns: null" removes the shipped DNS resolver, "static" takes its place.
    resolver = {"resolver": {"dns": None, "static": {"hostnames": gateways}}}
    return {"exporters": {"load_balancing/traces": resolver, "load_balancing/metrics": resolver}}


def app_series(gateway) -> set[str]:
    """The applications' own series (openai.client.*, not the span-derived counter) a gateway serves to
    Prometheus: each line of its exporter's page without the value."""
    page = stack.http_get(f"http://{gateway.prometheus_exporter}/metrics").decode()
    return {line.rsplit(" ", 1)[0] for line in page.splitlines()
            if line.startswith("openai_client_") and not line.startswith("openai_client_scope_errors_spans")}


def test_agent_and_two_gateways(tmp_path):
    bins = stack.require_binaries()
    good, restricted = make_key(), make_key()
    started: list = []
    apps: list[fh.App] = []
    with FakeOpenAI() as fake:
        fake.grant(good)
        fake.grant(restricted, scopes=fh.RESTRICTED_SCOPES)
        try:
            jaeger = stack.Jaeger.start(bins, tmp_path / "jaeger", timeout=PATIENCE)
            started.append(jaeger)
            gateways = []
            for i in (1, 2):
                g = stack.Collector.start(
                    bins, tmp_path / f"gw{i}", ["gateway.yaml", "jaeger.yaml"], name=f"gateway{i}",
                    env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc, "TRACE_SAMPLING_PERCENTAGE": str(SAMPLING_PERCENT)},
                    extra=gateway_overlay(str(tmp_path / f"gw{i}" / "arrivals.jsonl")), timeout=PATIENCE)
                started.append(g)
                gateways.append(g)
            agent = stack.Collector.start(bins, tmp_path / "agent", ["agent.yaml"], name="agent",
                                          env={"GATEWAY_OTLP_ENDPOINT": gateways[0].otlp_grpc},
                                          extra=agent_overlay([g.otlp_grpc for g in gateways]), timeout=PATIENCE)
            started.append(agent)
            prom = stack.Prometheus.start(bins, tmp_path / "prom", scrape=[g.prometheus_exporter for g in gateways])
            started.append(prom)

            for n in (1, 2):
                plan = fh.Plan(base_url=fake.base_url, otlp=agent.otlp_grpc, service="chat", instance=f"app-{n}",
                               keys={"good": good, "restricted": restricted},
                               calls=[fh.Call("good", "models"), fh.Call("restricted", "runs")],
                               workdir=str(tmp_path / "apps"), interval=0, rounds=TRACES_PER_APP,
                               trace_calls=CALLS_PER_TRACE, scope_error_every=SCOPE_ERROR_EVERY)
                apps.append(fh.App(plan))
            summaries = [a.wait(PATIENCE) for a in apps]
            assert all(s.failed_spans == 0 for s in summaries), [s.failed_spans for s in summaries]
            sent: dict[str, int] = {}
            for s in summaries:
                sent.update(s.traces)
            error_traces = {t for s in summaries for t in s.scope_error_traces}
            error_spans = sum(len(s.scope_error_spans) for s in summaries)
            assert len(sent) == 2 * TRACES_PER_APP
            assert len(error_traces) == 2 * math.ceil(TRACES_PER_APP / SCOPE_ERROR_EVERY)
            assert all(n == CALLS_PER_TRACE + 1 for n in sent.values())

            # Every trace arrives whole on exactly one gateway.
            def arrivals() -> list[dict[str, int]]:
                per = []
                for g in (1, 2):
                    counts: dict[str, int] = defaultdict(int)
                    for span in fh.otlp_json_spans(tmp_path / f"gw{g}" / "arrivals.jsonl"):
                        counts[span["trace_id"]] += 1
                    per.append(dict(counts))
                return per

            stack.wait_until(lambda: sum(sum(c.values()) for c in arrivals()) == sum(sent.values()), timeout=PATIENCE,
                             interval=1.0, what="every span at a gateway")
            per_gateway = arrivals()
            assert not set(per_gateway[0]) & set(per_gateway[1]), "a trace was split over both gateways"
            for counts in per_gateway:
                assert all(counts[t] == sent[t] for t in counts)
                assert len(counts) >= 0.3 * len(sent), [len(c) for c in per_gateway]  # both really used
            assert set(per_gateway[0]) | set(per_gateway[1]) == set(sent)

            # Sampling: every scope-error trace kept whole; healthy ones at the configured rate.
            def kept() -> dict[str, int]:
                return {t["traceID"]: len(t["spans"]) for t in jaeger.traces("chat")}

            stack.wait_until(drained(gateways, per_gateway, kept), timeout=PATIENCE, interval=1.0,
                             what="the gateways drained into Jaeger")
            in_jaeger = kept()
            assert sum(g.own_metric("otelcol_exporter_send_failed_spans", exporter=JAEGER_EXPORTER)
                       for g in gateways) == 0, "spans failed to reach Jaeger"
            assert error_traces <= set(in_jaeger), f"{len(error_traces - set(in_jaeger))} scope-error traces missing"
            assert all(in_jaeger[t] == sent[t] for t in error_traces), "a scope-error trace lost spans"
            assert set(in_jaeger) <= set(sent)
            healthy = [t for t in sent if t not in error_traces]
            kept_healthy = [t for t in healthy if t in in_jaeger]
            assert all(in_jaeger[t] == sent[t] for t in kept_healthy)
            n, p = len(healthy), SAMPLING_PERCENT / 100
            bound = 4 * math.sqrt(n * p * (1 - p))
            print(f"scale-out: {len(sent)} traces ({len(error_traces)} with scope errors); gateways got "
                  f"{[len(c) for c in per_gateway]}; kept {len(error_traces & set(in_jaeger))}/{len(error_traces)} "
                  f"scope-error traces, {len(kept_healthy)}/{n} healthy = {len(kept_healthy) / n:.3f} "
                  f"(configured {p}, 4-sigma bound +-{bound:.1f} traces)")
            assert abs(len(kept_healthy) - n * p) <= bound, (len(kept_healthy), n * p, bound)

            # The apps' own metrics, hashed by stream (agent.yaml's load_balancing/metrics): every series on exactly
            # one gateway, so no replica serves a stale or partial copy of another's; both replicas get some.
            def served() -> list[set[str]] | None:
                per = [app_series(g) for g in gateways]
                both = per[0] | per[1]
                apps_in = {i for i in ("app-1", "app-2") if any(f'instance="{i}"' in x and
                                                                x.startswith("openai_client_requests_total")
                                                                for x in both)}
                return per if apps_in == {"app-1", "app-2"} else None

            per_series = stack.wait_until(served, timeout=PATIENCE, interval=1.0,
                                          what="the apps' series on the gateways")
            assert not per_series[0] & per_series[1], sorted(per_series[0] & per_series[1])[:5]
            assert per_series[0] and per_series[1], [len(x) for x in per_series]

            # Span-derived series: one writer per gateway, distinct instance ids, adding up.
            q = "sum by (instance) (openai_client_scope_errors_spans_total)"
            by_instance = stack.wait_until(
                lambda: (lambda r: r if sum(r.values()) == error_spans else None)(
                    {x["metric"].get("instance", ""): float(x["value"][1]) for x in prom.query(q)}),
                timeout=PATIENCE, interval=1.0, what="derived series of both gateways")
            assert len(by_instance) == 2 and all(by_instance) and all(v > 0 for v in by_instance.values()), by_instance
            gw_error_spans = sorted(
                sum(1 for s in fh.otlp_json_spans(tmp_path / f"gw{g}" / "arrivals.jsonl")
                    if s["attributes"].get("openai.scope_error") is True) for g in (1, 2))
            assert sorted(by_instance.values()) == gw_error_spans
        finally:
            for a in apps:
                a.kill()
            for proc in reversed(started):
                proc.stop()
