"""Jaeger v2 (in-memory storage, OTLP in, query API) on free loopback ports, and its query API read back."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ..ports import free_port, hold, release
from .binaries import Binaries
from .collector import write_config
from .paths import JAEGER_CONFIG
from .procs import Managed, Process, http_get, spawn, wait_healthy

PathLike = Union[str, Path]
PORTS = ("grpc", "http", "qhttp", "qgrpc", "health")


def jaeger_env(grpc: int, http: int, query_http: int, query_grpc: int, health: int) -> dict[str, str]:
    """Environment for collector-config/stack/jaeger-v2.yaml."""
    return {"JAEGER_OTLP_GRPC_LISTEN": f"127.0.0.1:{grpc}", "JAEGER_OTLP_HTTP_LISTEN": f"127.0.0.1:{http}",
            "JAEGER_QUERY_HTTP_LISTEN": f"127.0.0.1:{query_http}",
            "JAEGER_QUERY_GRPC_LISTEN": f"127.0.0.1:{query_grpc}", "JAEGER_HEALTH_LISTEN": f"127.0.0.1:{health}"}


@dataclass(frozen=True)
class Span:
    """A Jaeger span flattened: tags and event (log) fields as {key: (jaeger type, value)}."""

    trace_id: str
    span_id: str
    operation: str
    service: str
    tags: dict[str, tuple[str, Any]]
    events: list[dict[str, tuple[str, Any]]]


@dataclass
class Jaeger(Managed):
    process: Process
    otlp_grpc: str  # "127.0.0.1:port"
    otlp_http: str
    url: str  # query HTTP API / UI base, "http://127.0.0.1:port"

    @classmethod
    def start(cls, bins: Binaries, workdir: PathLike, name: str = "jaeger", timeout: float = 60.0,
              ports: Mapping[str, int] | None = None, overlays: Sequence[PathLike] = (),
              env: Mapping[str, str] | None = None, detach: bool = False) -> Jaeger:
        """The shipped collector-config/stack/jaeger-v2.yaml (plus ``overlays``) on ``ports`` (names as in
        :data:`PORTS`; free ones by default)."""
        assert bins.jaeger is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        p = dict(ports) if ports else {n: free_port() for n in PORTS}
        argv = [str(bins.jaeger), "--config", str(JAEGER_CONFIG)]
        for overlay in overlays:
            argv += ["--config", str(overlay)]
        full_env = jaeger_env(p["grpc"], p["http"], p["qhttp"], p["qgrpc"], p["health"])
        full_env.update(env or {})
        proc = spawn(name, argv, workdir, full_env, detach=detach)
        wait_healthy(proc, f"http://127.0.0.1:{p['health']}/status", timeout)
        wait_healthy(proc, f"http://127.0.0.1:{p['qhttp']}/api/services", timeout)
        return cls(proc, f"127.0.0.1:{p['grpc']}", f"http://127.0.0.1:{p['http']}", f"http://127.0.0.1:{p['qhttp']}")

    def raw(self, path: str) -> bytes:
        return http_get(self.url + path, timeout=15)

    def api(self, path: str) -> Any:
        return json.loads(self.raw(path))

    def services(self) -> list[str]:
        return list(self.api("/api/services")["data"] or [])

    def search_path(self, service: str, tags: Mapping[str, str] | None = None, limit: int = 10000,
                    lookback: str = "1h") -> str:
        """The /api/traces query the UI's search form sends (tags as a JSON object)."""
        q = {"service": service, "limit": str(limit), "lookback": lookback}
        if tags:
            q["tags"] = json.dumps(dict(tags))
        return "/api/traces?" + urllib.parse.urlencode(q)

    def traces(self, service: str, tags: Mapping[str, str] | None = None, limit: int = 10000) -> list[dict]:  # type: ignore[type-arg]
        return list(self.api(self.search_path(service, tags, limit))["data"] or [])

    def find_spans(self, service: str, tags: Mapping[str, str] | None = None, limit: int = 10000) -> list[Span]:
        """Spans of the matching traces that themselves carry every requested tag (Jaeger returns whole
        traces; a trace matches when one of its spans does)."""
        out = []
        for trace in self.traces(service, tags, limit):
            procs = trace.get("processes") or {}
            for s in trace["spans"]:
                stags = {t["key"]: (t["type"], t["value"]) for t in s.get("tags") or []}
                if tags and not all(k in stags and str(stags[k][1]).lower() == str(v).lower() for k, v in tags.items()):
                    continue
                events = [{f["key"]: (f["type"], f["value"]) for f in log.get("fields") or []}
                          for log in s.get("logs") or []]
                svc = (procs.get(s.get("processID")) or {}).get("serviceName", "")
                out.append(Span(trace["traceID"], s["spanID"], s["operationName"], svc, stags, events))
        return out


@dataclass
class DurableJaeger:
    """Jaeger v2 on fixed loopback ports with badger storage in ``workdir``: ``stop()`` then ``start()``
    again keeps everything it had stored (the in-memory store of the shipped stack config would not)."""

    bins: Binaries
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    current: Jaeger | None = None
    held: list[socket.socket] = field(default_factory=list)

    OVERLAY = {
        "extensions": {
            "jaeger_query": {"storage": {"traces": "durable"}},
            "jaeger_storage": {"backends": {"durable": {"badger": {
                "directories": {"keys": "${env:JAEGER_BADGER_DIR}/keys", "values": "${env:JAEGER_BADGER_DIR}/values"},
                "ephemeral": False}}}},
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "durable"}},
    }

    def start(self, timeout: float = 60.0) -> Jaeger:
        self.workdir.mkdir(parents=True, exist_ok=True)
        release(self.held)
        if not self.ports:
            self.ports = {n: free_port() for n in PORTS}
        overlay = write_config(self.workdir / "jaeger-durable.yaml", self.OVERLAY)
        self.current = Jaeger.start(self.bins, self.workdir, name=f"jaeger-{int(time.time() * 1000)}",
                                    timeout=timeout, ports=self.ports, overlays=[overlay],
                                    env={"JAEGER_BADGER_DIR": str(self.workdir / "badger")})
        return self.current

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def stop(self, hold_ports: bool = False) -> None:
        """Stop Jaeger; with ``hold_ports`` its ports stay reserved (bound, not listening: connections are
        refused, as from a stopped server) so nothing else on the machine takes them before ``start()``."""
        if self.current is not None:
            self.current.stop()
        if hold_ports:
            self.held = [hold(p) for p in self.ports.values()]
