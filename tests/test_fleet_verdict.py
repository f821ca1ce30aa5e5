"""The fleet-level verdict on the real stack (issue 9).

Three application processes share one key. app-1 and app-2 succeed on GET /v1/threads/{thread_id}/runs,
then the platform drops the key's api.threads.read (a scope-loss window on the fake server) and app-3
starts in the middle of it: it never sees a success of its own, so its live diagnosis can only be
``unknown``/``never_granted``. Their metrics go through the real Collector (base.yaml + jaeger.yaml) into
a real Prometheus with the shipped rules: ``OpenAIScopeErrorPlatformSide`` fires for that key, and not
for a second key that is restricted on that endpoint everywhere (while it works on /v1/models).
"""

from __future__ import annotations

import fleet_helpers as fh

from otel_openai_scopes import attributes as A
from otel_openai_scopes.fingerprint import fingerprint
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key

ALERT = "OpenAIScopeErrorPlatformSide"

# The rule's joins and exclusions are mutation-tested in tests/test_fleet_rules.py.
RUNS_TEMPLATE = "/v1/threads/{thread_id}/runs"


def _alerts_for(prom: stack.Prometheus, fp: str, state: str | None = None) -> list[dict]:
    return [a for a in prom.alerts() if a["labels"].get("alertname") == ALERT
            and a["labels"].get("openai_key_fingerprint") == fp and (state is None or a["state"] == state)]


def test_platform_side_for_a_key_that_works_elsewhere_not_for_one_restricted_everywhere(tmp_path):
    bins = stack.require_binaries()
    shared, restricted = make_key(), make_key()
    fp_shared, fp_restricted = fingerprint(shared), fingerprint(restricted)
    apps: list[fh.App] = []
    with FakeOpenAI() as fake, stack.Jaeger.start(bins, tmp_path / "jaeger") as jaeger:
        fake.grant(shared)
        fake.grant(restricted, scopes=fh.RESTRICTED_SCOPES)
        col = prom = None
        try:
            col = stack.Collector.start(bins, tmp_path / "otelcol", ["base.yaml", "jaeger.yaml"],
                                        env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc})
            prom = stack.Prometheus.start(bins, tmp_path / "prom", scrape=[col.prometheus_exporter],
                                          rules=[fh.fast_rules(tmp_path)])
            calls = [fh.Call("shared", "runs"), fh.Call("restricted", "runs"), fh.Call("restricted", "models")]

            def app(instance: str) -> fh.App:
                plan = fh.Plan(base_url=fake.base_url, otlp=col.otlp_grpc, service="chat", instance=instance,
                               keys={"shared": shared, "restricted": restricted}, calls=calls,
                               workdir=str(tmp_path / "apps"), interval=0.2)
                a = fh.App(plan)
                apps.append(a)
                return a

            app("app-1"), app("app-2")
            ok = (f'openai_client_requests_total{{openai_key_fingerprint="{fp_shared}",'
                  f'url_template="{RUNS_TEMPLATE}",error_type=""}}')
            stack.wait_until(lambda: {r["metric"]["instance"] for r in prom.query(ok)} == {"app-1", "app-2"},
                             timeout=60, what="successes of app-1 and app-2 in Prometheus")
            # The restricted key has failed long enough everywhere to be judged, and nothing fires for it.
            stack.wait_until(lambda: prom.value(
                f'openai_client_scope_errors_total{{openai_key_fingerprint="{fp_restricted}",'
                f'openai_scope_error_diagnosis="never_granted"}}') > 0, timeout=30, what="restricted key errors")

            fake.lose_scope(shared, fh.THREADS_READ, duration=600)  # the platform flap begins
            stack.wait_until(lambda: prom.value(
                f'openai_client_scope_errors_total{{openai_key_fingerprint="{fp_shared}",instance="app-1"}}') > 0,
                timeout=30, what="app-1 failing")
            app("app-3")  # starts in the middle of the flap
            stack.wait_until(lambda: prom.value(
                f'openai_client_scope_errors_total{{openai_key_fingerprint="{fp_shared}",instance="app-3",'
                f'openai_scope_error_diagnosis="never_granted"}}') > 0, timeout=30, what="app-3 never_granted")

            firing = stack.wait_until(lambda: _alerts_for(prom, fp_shared, "firing"), timeout=60,
                                      what=f"{ALERT} firing for the shared key")
            labels = firing[0]["labels"]
            assert labels["url_template"] == RUNS_TEMPLATE and labels["openai_scope"] == fh.THREADS_READ
            assert labels["server_address"] == "127.0.0.1"
            assert "platform-side" in firing[0]["annotations"]["description"]

            # The verdict rests on app-3 alone too: the shipped expression with its error side narrowed
            # to app-3 still names the shared key (app-3 itself never succeeded there).
            excluded = 'openai_scope_error_diagnosis!~"client_mutated|token_lacks_scope|context_mismatch"'
            narrowed = fh.shipped_expr(ALERT).replace(excluded + "}", excluded + ',instance="app-3"}')
            assert narrowed.count('instance="app-3"') == 3
            assert {r["metric"]["openai_key_fingerprint"] for r in prom.query(narrowed)} == {fp_shared}
            assert prom.query(ok.replace('error_type=""', 'error_type="",instance="app-3"')) == []

            # Restricted on that endpoint everywhere: never pending, never firing, although it works on
            # /v1/models and fails in all three processes.
            assert _alerts_for(prom, fp_restricted) == []
            assert prom.value(f'openai_client_requests_total{{openai_key_fingerprint="{fp_restricted}",'
                              f'url_template="/v1/models",error_type=""}}') > 0
            assert {r["metric"]["instance"] for r in prom.query(
                f'openai_client_scope_errors_total{{openai_key_fingerprint="{fp_restricted}"}}')} \
                == {"app-1", "app-2", "app-3"}

            # app-3's own live verdict for the shared key: only unknown / never_granted, in its spans and
            # in the series it exported.
            diags = {r["metric"]["openai_scope_error_diagnosis"] for r in prom.query(
                f'openai_client_scope_errors_total{{openai_key_fingerprint="{fp_shared}",instance="app-3"}}')}
            assert diags <= {A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_NEVER_GRANTED} and A.DIAGNOSIS_NEVER_GRANTED in diags
            summaries = {a.plan.instance: a.stop() for a in apps}
            s3 = summaries["app-3"]
            assert set(s3.diagnoses["shared"]) <= {A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_NEVER_GRANTED}
            assert s3.calls["shared/runs"]["ok"] == 0 and s3.calls["shared/runs"]["error"] > 0
            # app-1 saw its own successes: it calls the same errors flapping.
            assert A.DIAGNOSIS_SCOPE_FLAPPING in summaries["app-1"].diagnoses["shared"]
            assert _alerts_for(prom, fp_restricted) == []
        finally:
            for a in apps:
                a.kill()
            for proc in (prom, col):
                if proc is not None:
                    proc.stop()
