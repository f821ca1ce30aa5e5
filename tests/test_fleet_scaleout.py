"""Scale-out on the real Collector (issue 9): apps -> agent (agent.yaml) -> two gateways (gateway.yaml +
jaeger.yaml) -> Jaeger, derived metrics -> Prometheus. A test overlay swaps the agent's DNS resolver for a
static list of the two gateways (loopback has no headless Service), shortens the gateways' tail-sampling
decision_wait and records what each gateway receives (a file exporter beside the shipped exporters).

Checked: every trace arrives whole on exactly one gateway; every trace with a scope error is in Jaeger
with all its spans; healthy traces are kept at TRACE_SAMPLING_PERCENTAGE within a binomial bound; the two
gateways' span-derived series carry distinct ``instance`` labels and add up to the scope-error spans.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import fleet_helpers as fh

from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key

SAMPLING_PERCENT = 25
TRACES_PER_APP = 375
SCOPE_ERROR_EVERY = 5  # every 5th trace ends with a scope error: 20%
CALLS_PER_TRACE = 3  # plus the parent "job" span


def gateway_overlay(arrivals: str) -> dict:
    return {
        "processors": {"tail_sampling": {"decision_wait": "2s"}},
        "exporters": {"file/arrivals": {"path": arrivals, "flush_interval": "100ms"}},
        "service": {"pipelines": {"traces": {
            "exporters": ["forward/sampling", "forward/scope_errors", "file/arrivals"]}}},
    }


def agent_overlay(gateways: list[str]) -> dict:
    # Maps merge: "dns: null" removes the shipped DNS resolver, "static" takes its place.
    return {"exporters": {"load_balancing/traces": {"resolver": {"dns": None, "static": {"hostnames": gateways}}}}}


def test_agent_and_two_gateways(tmp_path):
    bins = stack.require_binaries()
    good, restricted = make_key(), make_key()
    started: list = []
    apps: list[fh.App] = []
    with FakeOpenAI() as fake:
        fake.grant(good)
        fake.grant(restricted, scopes=fh.RESTRICTED_SCOPES)
        try:
            jaeger = stack.Jaeger.start(bins, tmp_path / "jaeger")
            started.append(jaeger)
            gateways = []
            for i in (1, 2):
                g = stack.Collector.start(
                    bins, tmp_path / f"gw{i}", ["gateway.yaml", "jaeger.yaml"], name=f"gateway{i}",
                    env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc, "TRACE_SAMPLING_PERCENTAGE": str(SAMPLING_PERCENT)},
                    extra=gateway_overlay(str(tmp_path / f"gw{i}" / "arrivals.jsonl")))
                started.append(g)
                gateways.append(g)
            agent = stack.Collector.start(bins, tmp_path / "agent", ["agent.yaml"], name="agent",
                                          env={"GATEWAY_OTLP_ENDPOINT": gateways[0].otlp_grpc},
                                          extra=agent_overlay([g.otlp_grpc for g in gateways]))
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
            summaries = [a.wait(180) for a in apps]
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

            stack.wait_until(lambda: sum(sum(c.values()) for c in arrivals()) == sum(sent.values()), timeout=60,
                             what="every span at a gateway")
            per_gateway = arrivals()
            assert not set(per_gateway[0]) & set(per_gateway[1]), "a trace was split over both gateways"
            for counts in per_gateway:
                assert all(counts[t] == sent[t] for t in counts)
                assert len(counts) >= 0.3 * len(sent), [len(c) for c in per_gateway]  # both really used
            assert set(per_gateway[0]) | set(per_gateway[1]) == set(sent)

            # Sampling: every scope-error trace kept whole; healthy ones at the configured rate.
            def kept() -> dict[str, int]:
                return {t["traceID"]: len(t["spans"]) for t in jaeger.traces("chat")}

            stack.wait_until(lambda: error_traces <= set(kept()), timeout=60, what="every scope-error trace in Jaeger")
            last: dict[str, int] = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # settle: tail sampling decides every decision_wait
                now = kept()
                if now == last:
                    break
                last = now
                time.sleep(3)
            in_jaeger = kept()
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

            # Span-derived series: one writer per gateway, distinct instance ids, adding up.
            q = "sum by (instance) (openai_client_scope_errors_spans_total)"
            by_instance = stack.wait_until(
                lambda: (lambda r: r if sum(r.values()) == error_spans else None)(
                    {x["metric"].get("instance", ""): float(x["value"][1]) for x in prom.query(q)}),
                timeout=60, what="derived series of both gateways")
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
