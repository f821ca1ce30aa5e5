"""Faults during an incident, on the real stack (issue 9): nothing the pipeline accepted is lost.

* Jaeger stops for 20 s in the middle of a run and starts again (on-disk storage, same ports): every span
  the Collector accepted, every scope-error span among them, is in Jaeger afterwards. The shipped
  base.yaml exporter (in-memory sending queue, retry_on_failure) carries the outage.
* The Collector is killed (SIGKILL) mid-run and started again while the anomaly sink is unreachable:
  with the persistent queue otlp.yaml puts on ``otlp_grpc/anomalies`` (file_storage), every scope-error
  span it had accepted reaches the sink once it is up. The same run with the queue in memory loses them,
  which shows the test can tell.

"Accepted" is exact: the app records the spans of every export the Collector answered with success.
"""

from __future__ import annotations

import time

import fleet_helpers as fh
import pytest

from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support import stack
from tests.support.keys import make_key

OUTAGE_SECONDS = 20
ANOMALY_EXPORTER = "otlp_grpc/anomalies"


def _exporter_metric(col: stack.Collector, metric: str, exporter: str) -> float:
    total = 0.0
    for line in stack.http_get(col.telemetry_url).decode().splitlines():
        if line.startswith(metric + "{") and f'exporter="{exporter}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _app(fake: FakeOpenAI, otlp: str, workdir, keys: dict, instance: str) -> fh.App:
    plan = fh.Plan(base_url=fake.base_url, otlp=otlp, service="billing", instance=instance, keys=keys,
                   calls=[fh.Call("restricted", "runs"), fh.Call("good", "models")], workdir=str(workdir),
                   interval=0.1)
    return fh.App(plan)


@pytest.fixture
def fake_keys():
    good, restricted = make_key(), make_key()
    with FakeOpenAI() as fake:
        fake.grant(good)
        fake.grant(restricted, scopes=fh.RESTRICTED_SCOPES)
        yield fake, {"good": good, "restricted": restricted}


def test_jaeger_down_for_20s_mid_run_loses_nothing(tmp_path, fake_keys):
    bins = stack.require_binaries()
    fake, keys = fake_keys
    jaeger = fh.DurableJaeger(bins, tmp_path / "jaeger")
    col = app = None
    try:
        jaeger.start()
        col = stack.Collector.start(bins, tmp_path / "otelcol", ["base.yaml", "jaeger.yaml"],
                                    env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc})
        app = _app(fake, col.otlp_grpc, tmp_path / "apps", keys, "billing-1")
        stack.wait_until(lambda: jaeger.current.find_spans("billing", {"openai.scope_error": "true"}), timeout=30,
                         what="first scope-error spans in Jaeger")
        accepted_before = col.own_metric("otelcol_receiver_accepted_spans")
        jaeger.stop(hold_ports=True)
        time.sleep(OUTAGE_SECONDS / 2)
        # The outage is felt: the main exporter holds spans it cannot deliver.
        backlog = _exporter_metric(col, "otelcol_exporter_queue_size", "otlp_grpc/main") \
            + _exporter_metric(col, "otelcol_exporter_send_failed_spans", "otlp_grpc/main")
        time.sleep(OUTAGE_SECONDS / 2)
        accepted_during = col.own_metric("otelcol_receiver_accepted_spans") - accepted_before
        jaeger.start()
        restarted = time.monotonic()
        time.sleep(3)
        summary = app.stop()
        assert summary.failed_spans == 0, "the Collector refused spans"
        assert backlog > 0 and accepted_during > 0, (backlog, accepted_during)

        def arrived() -> tuple[set[str], set[str]]:
            spans = jaeger.current.find_spans("billing")
            errors = {s.span_id for s in spans if s.tags.get("openai.scope_error", ("", False))[1] is True}
            return {s.span_id for s in spans}, errors

        want_errors = set(summary.scope_error_spans)
        stack.wait_until(lambda: want_errors <= arrived()[1], timeout=90, what="every scope-error span in Jaeger")
        stack.wait_until(lambda: len(arrived()[0]) >= summary.exported_spans, timeout=30, what="every span in Jaeger")
        all_ids, error_ids = arrived()
        recovery = time.monotonic() - restarted
        print(f"jaeger outage {OUTAGE_SECONDS}s (everything in Jaeger {recovery:.0f}s after its restart): "
              f"accepted {summary.exported_spans} spans "
              f"({len(want_errors)} scope errors, {accepted_during:.0f} during the outage); in Jaeger "
              f"{len(all_ids)} spans, {len(error_ids & want_errors)} scope errors; lost {len(want_errors - error_ids)}")
        assert want_errors <= error_ids and len(all_ids) == summary.exported_spans
    finally:
        if app is not None:
            app.kill()
        if col is not None:
            col.stop()
        jaeger.stop()
        fh.release(jaeger.held)


def _restart_run(tmp_path, fake_keys, persistent: bool) -> tuple[set[str], set[str], float]:
    """Collector (base + otlp) with the anomaly sink down; SIGKILL + restart mid-run; then the sink comes
    up. Returns (accepted scope-error span ids, ids the sink received, anomaly queue size at the kill)."""
    bins = stack.require_binaries()
    fake, keys = fake_keys
    reserved = fh.hold()  # the anomaly sink's port: refuses connections until the sink starts on it
    anomaly_port = reserved.getsockname()[1]
    extra = None if persistent else {"exporters": {ANOMALY_EXPORTER: {"sending_queue": {"storage": None}}}}
    main = col = app = sink = None
    try:
        main = fh.Sink.start(bins, tmp_path / "main-sink", name="main")
        col = stack.Collector.start(bins, tmp_path / "otelcol", ["base.yaml", "otlp.yaml"], extra=extra, env={
            "MAIN_OTLP_ENDPOINT": main.otlp_grpc, "ANOMALY_OTLP_ENDPOINT": f"127.0.0.1:{anomaly_port}",
            "OTLP_INSECURE": "true", "ANOMALY_QUEUE_DIR": str(tmp_path / "anomaly-queue")})
        app = _app(fake, col.otlp_grpc, tmp_path / "apps", keys, "billing-1")
        queued = stack.wait_until(lambda: (lambda q: q if q >= 10 else 0)(
            _exporter_metric(col, "otelcol_exporter_queue_size", ANOMALY_EXPORTER)),
            timeout=30, what="scope-error spans queued for the unreachable anomaly sink")
        time.sleep(1)
        queued = _exporter_metric(col, "otelcol_exporter_queue_size", ANOMALY_EXPORTER)
        col.restart(kill=True)  # a crash, then the orchestrator starts it again
        time.sleep(2)
        reserved.close()
        sink = fh.Sink.start(bins, tmp_path / "anomaly-sink", name="anomalies", port=anomaly_port)
        time.sleep(1)
        summary = app.stop()
        want = set(summary.scope_error_spans)

        def received() -> set[str]:
            return {s["span_id"] for s in sink.spans()}

        if persistent:
            stack.wait_until(lambda: want <= received(), timeout=90, what="every accepted scope-error span at the sink")
        else:
            # In memory: the spans queued before the kill are gone; wait for the rest to drain.
            stack.wait_until(lambda: _exporter_metric(col, "otelcol_exporter_queue_size", ANOMALY_EXPORTER) == 0
                             and received(), timeout=90, what="the in-memory queue to drain")
            time.sleep(2)
        got = received()
        assert all(s["attributes"].get("openai.scope_error") is True for s in sink.spans()), "not only scope errors"
        return want, got, queued
    finally:
        reserved.close()
        if app is not None:
            app.kill()
        if col is not None:
            col.stop()
        for s in (sink, main):
            if s is not None:
                s.stop()


def test_collector_restart_with_persistent_anomaly_queue_loses_nothing(tmp_path, fake_keys):
    want, got, queued = _restart_run(tmp_path, fake_keys, persistent=True)
    print(f"collector SIGKILL + restart, persistent queue: accepted {len(want)} scope-error spans "
          f"({queued:.0f} queued at the kill), sink received {len(want & got)}, lost {len(want - got)}")
    assert want <= got and queued > 0


def test_collector_restart_with_in_memory_queue_loses_what_was_queued(tmp_path, fake_keys):
    """The control: the same run without the file_storage queue loses the spans queued at the kill."""
    want, got, queued = _restart_run(tmp_path, fake_keys, persistent=False)
    print(f"collector SIGKILL + restart, in-memory queue: accepted {len(want)} scope-error spans "
          f"({queued:.0f} queued at the kill), sink received {len(want & got)}, lost {len(want - got)}")
    assert queued > 0 and want - got, "the in-memory queue kept everything: the persistent test proves nothing"
