"""The fleet verdict on the real stack as shipped, and how fast it comes (issue 14).

Real Collector (base.yaml + jaeger.yaml, nothing shortened), Jaeger v2, Prometheus as shipped (scrape every 10 s,
the rules file untouched: verdict group every 10 s, no ``for``, keep_firing_for) and Alertmanager with the shipped
alertmanager.yaml. Application processes (real ``openai`` SDK, the instrumentation, OTLP/gRPC) export metrics
every 10 s (OTEL_METRIC_EXPORT_INTERVAL=10000):

* app-1, app-2 (service chat) succeed with the shared key, then the platform drops its api.threads.read;
  app-3 starts in the middle of the outage (its own diagnosis: unknown, then never_granted);
* restricted (service ingest): a key without api.threads.read, working on /v1/models;
* mutated (service worker): a shared client whose api_key is swapped for a restricted tenant key;
* api-ok, api-bad (service api): ONE key, sent with project proj_ok (holds every scope) and proj_bad (lacks
  api.threads.read), as when one pod's OPENAI_PROJECT_ID points at the wrong project.

Who fires, who stays quiet, and the measured delays from the first scope 401 to firing (printed). The same spans,
written by the Collector's file exporter, go through ``report --json``: the same verdicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import fleet_helpers as fh

from otel_openai_scopes import verdicts
from otel_openai_scopes.fingerprint import fingerprint
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key

PS, CM, MUT = "OpenAIScopeErrorPlatformSide", "OpenAIScopeContextMismatch", "OpenAIScopeErrorClientMutated"
EXPORT_MS = 10_000
BOUND = 60.0  # the product's promise: a verdict within a minute of the first scope 401



def _alerts(prom: stack.Prometheus, name: str, state: str | None = None, **labels: str) -> list[dict]:
    return [a for a in prom.alerts() if a["labels"].get("alertname") == name
            and (state is None or a["state"] == state)
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def test_fleet_verdicts_and_their_delay_on_the_shipped_stack(tmp_path):
    bins = stack.require_binaries()
    fh.require_promtool()
    shared, restricted, good, tenant, drift = (make_key() for _ in range(5))
    fp = {n: fingerprint(k) for n, k in
          {"shared": shared, "restricted": restricted, "tenant": tenant, "drift": drift}.items()}
    fake = FakeOpenAI()
    apps: dict[str, fh.App] = {}
    procs: list = []
    with fake, stack.Jaeger.start(bins, tmp_path / "jaeger") as jaeger:
        for k in (shared, good, drift):
            fake.grant(k)
        fake.grant(restricted, scopes=fh.RESTRICTED_SCOPES)
        fake.grant(tenant, scopes=fh.RESTRICTED_SCOPES)
        fake.deny(drift, "proj_bad", [fh.THREADS_READ])
        spans_file = tmp_path / "collector-spans.jsonl"
        try:
            col = stack.Collector.start(
                bins, tmp_path / "otelcol", ["base.yaml", "jaeger.yaml"],
                env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc},
                # the Collector's file exporter beside the shipped exporters, for `report`
                extra={"exporters": {"file/report": {"path": str(spans_file), "flush_interval": "1s"}},
                       "service": {"pipelines": {"traces": {"exporters": ["otlp_grpc/main", "forward/scope_errors",
                                                                         "file/report"]}}}})
            procs.append(col)
            am = fh.Alertmanager.start(tmp_path / "am")
            procs.append(am)
            prom = fh.shipped_prometheus(bins, tmp_path / "prom", [col.prometheus_exporter], am.url)
            procs.append(prom)

            def app(instance: str, service: str, keys: dict, calls: list, **kw) -> fh.App:
                plan = fh.Plan(base_url=fake.base_url, otlp=col.otlp_grpc, service=service, instance=instance,
                               keys=keys, calls=calls, workdir=str(tmp_path / "apps"), interval=0.5,
                               metric_interval_ms=EXPORT_MS, **kw)
                apps[instance] = fh.App(plan)
                return apps[instance]

            shared_calls = [fh.Call("shared", "runs"), fh.Call("shared", "messages")]
            app("app-1", "chat", {"shared": shared}, shared_calls)
            app("app-2", "chat", {"shared": shared}, shared_calls)
            app("restricted-1", "ingest", {"restricted": restricted},
                [fh.Call("restricted", "runs"), fh.Call("restricted", "models")])
            app("api-ok", "api", {"drift": drift}, [fh.Call("drift", "runs")], projects={"drift": "proj_ok"})
            ok = (f'openai_client_requests_total{{openai_key_fingerprint="{fp["shared"]}",error_type=""}}')
            stack.wait_until(lambda: {r["metric"]["instance"] for r in prom.query(ok)} >= {"app-1", "app-2"},
                             timeout=90, what="successes of app-1 and app-2 in Prometheus")
            stack.wait_until(lambda: prom.query(f'openai_client_requests_total{{openai_key_fingerprint='
                                                f'"{fp["drift"]}",openai_project="proj_ok",error_type=""}}'),
                             timeout=60, what="the drifting key's successes with proj_ok")
            # Now the incidents: the platform drops the shared key's scope, a client gets mutated, a pod
            # starts with the wrong project; app-3 starts in the middle of the outage.
            fake.lose_scope(shared, fh.THREADS_READ, duration=900)
            app("api-bad", "api", {"drift": drift}, [fh.Call("drift", "runs")], projects={"drift": "proj_bad"})
            app("mutated-1", "worker", {"good": good, "tenant": tenant}, [fh.Call("good", "runs")],
                swap={"good": "tenant"}, swap_after=3)
            time.sleep(3)
            app("app-3", "chat", {"shared": shared}, shared_calls)

            def firing(name: str, **labels: str) -> list[dict]:
                return _alerts(prom, name, "firing", **labels)

            ps = stack.wait_until(lambda: firing(PS, openai_key_fingerprint=fp["shared"]), timeout=120,
                                  what="platform-side for the shared key")
            mut = stack.wait_until(lambda: firing(MUT, openai_key_fingerprint=fp["tenant"]), timeout=120,
                                   what="client-mutated for the swapped client")
            cm = stack.wait_until(lambda: firing(CM, openai_key_fingerprint=fp["drift"]), timeout=120,
                                  what="context mismatch for the drifting project")
            # app-3's own series say only unknown / never_granted for the shared key, and it is covered.
            stack.wait_until(lambda: prom.query(f'openai_client_scope_errors_total{{openai_key_fingerprint='
                                                f'"{fp["shared"]}",instance="app-3"}}'), timeout=60,
                             what="app-3's errors in Prometheus")
            time.sleep(25)  # a few more evaluations: nothing false appears meanwhile
            summaries = {name: a.stop() for name, a in apps.items()}

            # --- who fires
            assert {a["labels"]["url_template"] for a in firing(PS, openai_key_fingerprint=fp["shared"])} == \
                {"/v1/threads/{thread_id}/runs", "/v1/threads/{thread_id}/messages"}
            assert {a["labels"]["job"] for a in ps} == {"chat"}
            assert ps[0]["labels"]["cause"] == verdicts.PLATFORM
            assert ps[0]["annotations"]["runbook_url"] == fh.RUNBOOK_URL + "#openaiscopeerrorplatformside"
            assert mut[0]["labels"]["job"] == "worker" and mut[0]["labels"]["cause"] == verdicts.APP
            assert ps[0]["labels"]["openai_key_hint"] and mut[0]["labels"]["openai_key_hint"]
            # --- who stays quiet: never platform-side for the restricted key, the swapped-in tenant key, or the
            # drifting key (in either project): a wrong project is configuration, named as such.
            for name in ("restricted", "tenant", "drift"):
                assert _alerts(prom, PS, openai_key_fingerprint=fp[name]) == [], name
            assert _alerts(prom, CM, openai_key_fingerprint=fp["shared"]) == []
            assert _alerts(prom, CM, openai_key_fingerprint=fp["restricted"]) == []
            # --- the drifting project: ContextMismatch on proj_bad only, naming the project that works
            assert {a["labels"]["openai_project"] for a in cm} == {"proj_bad"}
            assert {a["labels"]["job"] for a in cm} == {"api"} and cm[0]["labels"]["cause"] == verdicts.CONFIGURATION
            assert cm[0]["labels"]["openai_key_hint"]
            assert "proj_ok" in cm[0]["annotations"]["description"], cm[0]["annotations"]
            assert "proj_bad" in cm[0]["annotations"]["summary"], cm[0]["annotations"]
            assert cm[0]["annotations"]["runbook_url"] == fh.RUNBOOK_URL + "#openaiscopecontextmismatch"
            assert _alerts(prom, CM, openai_project="proj_ok") == []
            # app-3 never saw a success of its own; its live verdict stayed unknown/never_granted.
            s3 = summaries["app-3"]
            assert set(s3.diagnoses["shared"]) <= {verdicts.UNKNOWN, verdicts.NEVER_GRANTED}
            assert s3.calls["shared/runs"]["ok"] == 0
            assert set(summaries["mutated-1"].diagnoses["tenant"]) == {verdicts.CLIENT_MUTATED}
            assert summaries["api-bad"].calls["drift/runs"]["ok"] == 0
            assert summaries["api-ok"].calls["drift/runs"]["error"] == 0

            # --- the measured delays, first scope 401 -> firing (activeAt: no "for", so active = firing)
            first_shared = min(summaries[i].first_scope_error["shared"] for i in ("app-1", "app-2"))
            delays = {
                PS: min(fh.active_at(a) for a in ps) - first_shared,
                MUT: fh.active_at(mut[0]) - summaries["mutated-1"].first_scope_error["tenant"],
                CM: min(fh.active_at(a) for a in cm) - summaries["api-bad"].first_scope_error["drift"],
            }
            print(f"\nfirst scope 401 -> firing, SDK export {EXPORT_MS // 1000} s, scrape {fh.SCRAPE_INTERVAL}, "
                  f"verdict group 10 s:")
            for name, d in delays.items():
                print(f"  {name}: {d:.1f} s")
            for name, d in delays.items():
                assert 0 <= d <= BOUND, (name, d)

            # --- one Alertmanager group per incident (key and cause), whatever the endpoints
            def groups_for(fingerprint_: str) -> list[dict]:
                return [g for g in am.groups() if g["labels"].get("openai_key_fingerprint") == fingerprint_]

            shared_groups = stack.wait_until(lambda: [g for g in groups_for(fp["shared"])
                                                      if len({a["labels"]["url_template"] for a in g["alerts"]
                                                              if a["labels"]["alertname"] == PS}) == 2],
                                             timeout=60, what="the shared key's group in Alertmanager")
            assert len(groups_for(fp["shared"])) == 1 and len(shared_groups) == 1
            assert shared_groups[0]["labels"] == {"openai_key_fingerprint": fp["shared"], "cause": verdicts.PLATFORM}

            # --- report --json over the same spans, from the Collector's file exporter
            stack.wait_until(lambda: spans_file.exists() and spans_file.stat().st_size > 0, timeout=30,
                             what="the Collector's file exporter output")
            time.sleep(3)
            rep = subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "report", "--json",
                                  str(spans_file)], capture_output=True, text=True, timeout=300)
            assert rep.returncode == 1, rep.stdout[-2000:] + rep.stderr[-2000:]
            windows = json.loads(rep.stdout)["windows"]
            by_key: dict[str, set[str]] = {}
            for w in windows:
                by_key.setdefault(w["fingerprint"], set()).add(w["diagnosis"])
            assert by_key[fp["shared"]] == {verdicts.SCOPE_FLAPPING}, by_key
            assert by_key[fp["tenant"]] == {verdicts.CLIENT_MUTATED}, by_key
            assert verdicts.SCOPE_FLAPPING not in by_key[fp["restricted"]], by_key
            # --- one key, two projects: configuration naming both contexts, never platform-side
            drifts = [w for w in windows if w["fingerprint"] == fp["drift"]]
            assert drifts and by_key[fp["drift"]] == {verdicts.CONTEXT_MISMATCH}, by_key
            for drift in drifts:
                assert (drift["organization"], drift["project"]) == ("", "proj_bad"), drift
                assert [c["project"] for c in drift["passing_contexts"]] == ["proj_ok"], drift["passing_contexts"]
                assert drift["passing_contexts"][0]["successes"] > 0, drift["passing_contexts"]
                text = drift["explanation"]
                assert "project proj_ok" in text and "project proj_bad" in text, text
                assert "Not platform-side." in text and "OpenAI support" not in text, text
        finally:
            for a in apps.values():
                a.kill()
            for p in reversed(procs):
                p.stop()
