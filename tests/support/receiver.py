"""An OTLP/HTTP protobuf receiver on loopback, in-process: what an app or the demo exported over the wire, kept as
sent (``raw``), as decoded spans (``spans``: the protobuf ``Span`` objects) and as metric names."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otel_openai_scopes.tools.otlp_json import attributes_of


class OtlpReceiver:
    """``with OtlpReceiver() as r:`` point an exporter at ``r.endpoint`` (OTEL_EXPORTER_OTLP_ENDPOINT: the
    base URL) or ``r.traces_url`` (an exporter's own ``endpoint=``); read ``r.spans`` afterwards."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.metric_names: set[str] = set()
        self.raw = bytearray()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver._receive(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.traces_url = self.endpoint + "/v1/traces"

    def _receive(self, path: str, body: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        with self._lock:
            self.raw.extend(body)
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                self.spans += [sp for rs in request.resource_spans for ss in rs.scope_spans for sp in ss.spans]
            elif path == "/v1/metrics":
                metrics = ExportMetricsServiceRequest.FromString(body)
                self.metric_names.update(m.name for rm in metrics.resource_metrics for sm in rm.scope_metrics
                                         for m in sm.metrics)

    def summaries(self) -> list[dict[str, Any]]:
        """The spans received as {"name", "attributes"} with attributes as plain values (the OTLP JSON mapping)."""
        from google.protobuf.json_format import MessageToDict

        return [{"name": sp.name, "attributes": attributes_of(MessageToDict(sp).get("attributes"))}
                for sp in list(self.spans)]

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
