"""The real Collector on free loopback ports, running the shipped configs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ..ports import free_port
from .binaries import Binaries
from .paths import CONFIG_DIR, LOOPBACK_OVERLAY
from .procs import Managed, Process, http_get, spawn, wait_healthy

PathLike = Union[str, Path]


def write_config(path: Path, doc: Mapping[str, Any], header: str = "") -> Path:
    """A config file for the Collector, Jaeger or Prometheus: JSON, which every YAML parser reads (so the stack
    needs no PyYAML, and ``scripts/stack.sh`` runs on a system python3)."""
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + json.dumps(doc, indent=2) + "\n")
    return path


def config_paths(configs: Sequence[PathLike]) -> list[Path]:
    """Names in collector-config/ or absolute paths."""
    return [Path(c) if Path(c).is_absolute() else CONFIG_DIR / c for c in configs]


def loopback_env(grpc: int, http: int, health: int, telemetry: int) -> dict[str, str]:
    """Environment for collector-config/stack/loopback.yaml (the last --config)."""
    return {"OTELCOL_OTLP_GRPC_LISTEN": f"127.0.0.1:{grpc}", "OTELCOL_OTLP_HTTP_LISTEN": f"127.0.0.1:{http}",
            "OTELCOL_HEALTH_LISTEN": f"127.0.0.1:{health}", "OTELCOL_TELEMETRY_PORT": str(telemetry)}


@dataclass
class Collector(Managed):
    """``start`` appends collector-config/stack/loopback.yaml (shared with ``scripts/stack.sh up``) and sets its
    variables so every listener of the shipped configs (OTLP receiver, health_check, the Collector's own
    metrics; the prometheus exporter through ``PROMETHEUS_EXPORTER_ENDPOINT``) is on a free 127.0.0.1 port;
    ``extra`` (a dict written as one more ``--config``, merged the confmap way) can add more."""

    process: Process
    otlp_grpc: str  # "127.0.0.1:port"
    otlp_http: str  # "http://127.0.0.1:port"
    prometheus_exporter: str  # "127.0.0.1:port" (used only if a config has the prometheus exporter)
    health_url: str
    telemetry_url: str  # the Collector's own metrics, http://.../metrics
    configs: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # what start() added to the environment (restart())

    @classmethod
    def start(cls, bins: Binaries, workdir: PathLike, configs: Sequence[PathLike],
              env: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None,
              name: str = "otelcol", timeout: float = 30.0, detach: bool = False) -> Collector:
        assert bins.otelcol is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        grpc, http, health, telemetry, prom = (free_port() for _ in range(5))
        paths = [*config_paths(configs), LOOPBACK_OVERLAY]
        if extra:
            paths.append(write_config(workdir / f"extra-{name}.yaml", dict(extra)))
        full_env = {"PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{prom}",
                    "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", "400MiB")}
        full_env.update(loopback_env(grpc, http, health, telemetry))
        full_env.update(env or {})
        argv = [str(bins.otelcol)] + [f"--config={p}" for p in paths]
        proc = spawn(name, argv, workdir, full_env, detach=detach)
        health_url = f"http://127.0.0.1:{health}/"
        wait_healthy(proc, health_url, timeout)
        return cls(proc, f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http}", f"127.0.0.1:{prom}", health_url,
                   f"http://127.0.0.1:{telemetry}/metrics", paths, full_env)

    @property
    def telemetry_target(self) -> str:
        """host:port of the Collector's own metrics, for a Prometheus scrape config."""
        return self.telemetry_url.split("//", 1)[1].split("/", 1)[0]

    def restart(self, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop this process (SIGTERM, or SIGKILL with ``kill``) and start the same argv, environment and
        ports again (fault tests: queues that must survive a restart). The new log is ``<name>.<n>.log``."""
        if kill and self.process.alive():
            self.process.popen.kill()
            self.process.popen.wait(10)
        self.process.stop()
        old = self.process
        n = 1
        while (old.log_path.parent / f"{old.name}.{n}.log").exists():
            n += 1
        self.process = spawn(f"{old.name}.{n}", list(old.popen.args), old.log_path.parent, self.env)
        wait_healthy(self.process, self.health_url, timeout)

    @staticmethod
    def validate(bins: Binaries, configs: Sequence[PathLike],
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """``otelcol validate`` on these configs (names in collector-config/ or paths)."""
        assert bins.otelcol is not None
        full_env = dict(os.environ)
        full_env.update(env or {})
        argv = [str(bins.otelcol), "validate"] + [f"--config={p}" for p in config_paths(configs)]
        return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=120)

    def own_metric(self, name: str, **labels: str) -> float:
        """Sum over labels of one series of the Collector's own telemetry, with or without its ``_total``
        suffix (``otelcol_exporter_sent_spans`` reads ``otelcol_exporter_sent_spans_total``); 0.0 if absent.
        ``**labels`` keeps only lines carrying them (e.g. ``exporter="debug/anomalies"``)."""
        total = 0.0
        for line in http_get(self.telemetry_url).decode().splitlines():
            for family in (name, name + "_total"):
                if line.startswith(family) and line[len(family):len(family) + 1] in ("{", " ") \
                        and all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total


@dataclass
class Sink(Managed):
    """A Collector standing in for an OTLP backend: every span it receives is written as OTLP JSON lines."""

    process: Process
    otlp_grpc: str
    path: Path

    @classmethod
    def start(cls, bins: Binaries, workdir: Path, name: str = "sink", port: int = 0) -> Sink:
        assert bins.otelcol is not None
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        health = free_port()
        out = workdir / f"{name}.jsonl"
        cfg = write_config(workdir / f"{name}.yaml", {
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}},
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
            "exporters": {"file": {"path": str(out), "flush_interval": "100ms"}},
            "service": {"extensions": ["health_check"],
                        "telemetry": {"metrics": {"level": "none"}},
                        "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        })
        proc = spawn(f"{name}-{int(time.time() * 1000)}", [str(bins.otelcol), f"--config={cfg}"], workdir)
        wait_healthy(proc, f"http://127.0.0.1:{health}/", 30)
        return cls(proc, f"127.0.0.1:{port}", out)

    def spans(self) -> list[dict[str, Any]]:
        """What it received so far: {"trace_id", "span_id", "name", "attributes"} per span."""
        from ..otlp import span_summaries

        return span_summaries(self.path)
