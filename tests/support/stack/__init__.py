"""The real stack: Collector, Jaeger v2 and Prometheus processes on free loopback ports, for the stack tests and,
through ``python3 -m tests.support.stack`` (stdlib only), for ``scripts/stack.sh``.

Every process is a child started with its own config in a directory we own; ``stop()`` ends exactly that child
(its pid), never anything found by name. ::

    bins = require_binaries()                                 # skip locally / fail under CI=true when missing
    with Jaeger.start(bins, workdir) as jaeger:               # in-memory storage, OTLP in, query API
        col = Collector.start(bins, workdir, ["base.yaml", "jaeger.yaml"],      # names in collector-config/
                              env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc})   # or absolute Paths
        col.otlp_grpc, col.otlp_http, col.prometheus_exporter, col.health_url, col.telemetry_url
        prom = Prometheus.start(bins, workdir, scrape=[col.prometheus_exporter],
                                rules=[RULES], scrape_interval="1s", evaluation_interval="1s")
        jaeger.find_spans(service="svc", tags={"openai.scope_error": "true"})   # flattened Span objects
        prom.query('sum(openai_client_requests_total)'); prom.value(expr); prom.firing(); prom.rules()
        col.own_metric("otelcol_exporter_sent_spans", exporter="debug/anomalies")  # own telemetry, summed
        col.log()                                        # its stdout+stderr so far (every process has .log())
        wait_until(lambda: ..., timeout=30, what="...")                      # poll helper

Modules: :mod:`.paths` (configs, versions, cache), :mod:`.binaries`, :mod:`.procs` (spawn, health waits),
:mod:`.collector`, :mod:`.jaeger`, :mod:`.prometheus` (and Alertmanager), :mod:`.build` and :mod:`.local`
(``scripts/stack.sh build`` and ``up``/``status``/``down``).
"""

from __future__ import annotations

from ..ports import free_port
from .binaries import Binaries, find_binaries, require_binaries, require_tool, system_tool
from .collector import Collector, loopback_env, write_config
from .jaeger import Jaeger, Span, jaeger_env
from .paths import (
    BUILDER_CONFIG,
    CONFIG_DIR,
    JAEGER_CONFIG,
    JAEGER_VERSION,
    LOOPBACK_OVERLAY,
    OTELCOL_VERSION,
    ROOT,
    RULES,
    builder_hash,
    cache_root,
    cached_jaeger,
    cached_otelcol,
)
from .procs import Managed, Process, http_get, spawn, wait_healthy, wait_until
from .prometheus import Alertmanager, Prometheus, prometheus_config

__all__ = [
    "BUILDER_CONFIG", "CONFIG_DIR", "JAEGER_CONFIG", "JAEGER_VERSION", "LOOPBACK_OVERLAY", "OTELCOL_VERSION", "ROOT",
    "RULES", "Alertmanager", "Binaries", "Collector", "Jaeger", "Managed", "Process", "Prometheus", "Span",
    "builder_hash", "cache_root", "cached_jaeger", "cached_otelcol", "find_binaries", "free_port", "http_get",
    "jaeger_env", "loopback_env", "prometheus_config", "require_binaries", "require_tool", "spawn", "system_tool",
    "wait_healthy", "wait_until", "write_config",
]
