"""Test harness: real Collector, Jaeger v2 and Prometheus processes on free loopback ports.

Used by tests/test_stack*.py (issue 8) and tests/test_fleet*.py (issue 9). Every process is a child
of the test process, started with its own config in a temporary directory; ``stop()`` ends exactly
that child (its pid), never anything found by name.

Binaries (``find_binaries()`` / ``require_binaries()``), first match wins:

1. env ``OTEL_OPENAI_SCOPES_OTELCOL``, ``OTEL_OPENAI_SCOPES_JAEGER``, ``OTEL_OPENAI_SCOPES_PROMETHEUS``
   (conftest.py keeps ``OTEL_OPENAI_SCOPES_*`` when it strips the caller's ``OTEL_*`` variables);
2. the cache ``scripts/stack.sh build`` fills:
   ``${OTEL_OPENAI_SCOPES_CACHE:-~/.cache/otel-openai-scopes}/stack/otelcol-<version>-<hash>/otelcol-openai-scopes``
   (hash = first 12 hex of sha256 of collector-config/builder-config.yaml) and ``.../stack/jaeger-<version>/jaeger``;
3. ``~/.cache/otel-openai-scopes/prebuilt/`` (development machines only; ignored when CI is set);
4. Prometheus: ``/usr/bin/prometheus`` or ``prometheus`` on PATH.

``require_binaries()`` skips a test when one is missing, and FAILS it when ``CI`` is set.

API::

    bins = require_binaries()
    with Jaeger.start(bins, workdir) as jaeger:               # in-memory storage, OTLP in, query API
        col = Collector.start(bins, workdir, ["base.yaml", "jaeger.yaml"],      # names in collector-config/
                              env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc})   # or absolute Paths
        col.otlp_grpc, col.otlp_http, col.prometheus_exporter, col.health_url, col.telemetry_url
        prom = Prometheus.start(bins, workdir, scrape=[col.prometheus_exporter],
                                rules=[rules_path], scrape_interval="1s", evaluation_interval="1s")
        jaeger.traces(service="svc", tags={"openai.scope_error": "true"})   # list of trace dicts
        jaeger.find_spans(service="svc", tags={...})                        # flattened Span objects
        jaeger.raw(path)                                                     # bytes of any API response
        prom.query('sum(openai_client_requests_total)')                      # result vector
        prom.alerts(); prom.rules(); prom.series('{__name__=~"openai_.*"}')
        prom.value(expr) -> float (sum of the vector); prom.firing() -> set of firing alert names
        col.own_metric("otelcol_exporter_sent_spans", exporter="debug/anomalies")  # own telemetry, summed
        col.log()                                        # its stdout+stderr so far (every process has .log())
        wait_until(lambda: ..., timeout=30, what="...")                      # poll helper
        col.stop(); prom.stop()                          # or use each as a context manager

``Collector.start`` appends ``collector-config/stack/loopback.yaml`` (the same file ``scripts/stack.sh up``
uses) and sets its variables so every listener of the shipped configs (OTLP receiver, health_check, the
Collector's own metrics; the prometheus exporter through ``PROMETHEUS_EXPORTER_ENDPOINT``) is on a free
127.0.0.1 port; ``extra`` (a dict written as one more ``--config``, merged the collector's way: maps merge,
lists are replaced) can add more, e.g. a file_storage directory. Jaeger runs
``collector-config/stack/jaeger-v2.yaml``, also shared with ``scripts/stack.sh``.
``Collector.validate(bins, configs, env)`` runs ``otelcol validate`` and returns the CompletedProcess.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "collector-config"
BUILDER_CONFIG = CONFIG_DIR / "builder-config.yaml"
LOOPBACK_OVERLAY = CONFIG_DIR / "stack" / "loopback.yaml"
JAEGER_CONFIG = CONFIG_DIR / "stack" / "jaeger-v2.yaml"
OTELCOL_VERSION = "0.161.0"
JAEGER_VERSION = "1.75.0"
OTELCOL_NAME = "otelcol-openai-scopes"

_ENV_BINARIES = {
    "otelcol": os.environ.get("OTEL_OPENAI_SCOPES_OTELCOL"),
    "jaeger": os.environ.get("OTEL_OPENAI_SCOPES_JAEGER"),
    "prometheus": os.environ.get("OTEL_OPENAI_SCOPES_PROMETHEUS"),
}
_CACHE_ENV = os.environ.get("OTEL_OPENAI_SCOPES_CACHE")

PathLike = Union[str, Path]


def cache_root() -> Path:
    return Path(_CACHE_ENV) if _CACHE_ENV else Path.home() / ".cache" / "otel-openai-scopes"


def builder_hash() -> str:
    """Same key as scripts/stack.sh: sha256 of builder-config.yaml, first 12 hex digits."""
    return hashlib.sha256(BUILDER_CONFIG.read_bytes()).hexdigest()[:12]


def cached_otelcol() -> Path:
    return cache_root() / "stack" / f"otelcol-{OTELCOL_VERSION}-{builder_hash()}" / OTELCOL_NAME


def cached_jaeger() -> Path:
    return cache_root() / "stack" / f"jaeger-{JAEGER_VERSION}" / "jaeger"


@dataclass(frozen=True)
class Binaries:
    otelcol: Path | None
    jaeger: Path | None
    prometheus: Path | None

    def missing(self) -> list[str]:
        return [n for n in ("otelcol", "jaeger", "prometheus") if getattr(self, n) is None]


def _executable(p: PathLike | None) -> Path | None:
    if p and Path(p).is_file() and os.access(p, os.X_OK):
        return Path(p)
    return None


def find_binaries() -> Binaries:
    in_ci = bool(os.environ.get("CI"))
    prebuilt = Path.home() / ".cache" / "otel-openai-scopes" / "prebuilt"

    def pick(name: str, cached: Path, prebuilt_name: str) -> Path | None:
        for cand in (_ENV_BINARIES[name], cached, None if in_ci else prebuilt / prebuilt_name):
            found = _executable(cand)
            if found:
                return found
        return None

    prom = _executable(_ENV_BINARIES["prometheus"]) or _executable("/usr/bin/prometheus") \
        or _executable(shutil.which("prometheus"))
    return Binaries(pick("otelcol", cached_otelcol(), OTELCOL_NAME), pick("jaeger", cached_jaeger(), "jaeger"), prom)


def require_binaries(*names: str) -> Binaries:
    """The binaries, or skip (locally) / fail (CI=true) naming what is missing and how to get it."""
    import pytest

    bins = find_binaries()
    wanted = names or ("otelcol", "jaeger", "prometheus")
    missing = [n for n in bins.missing() if n in wanted]
    if missing:
        msg = (f"missing stack binaries {missing}: run `bash scripts/stack.sh build` (builds the Collector and "
               f"Jaeger into {cache_root() / 'stack'}, installs Debian's prometheus), or set "
               f"OTEL_OPENAI_SCOPES_OTELCOL / _JAEGER / _PROMETHEUS")
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: stack tests may not skip)")
        pytest.skip(msg)
    return bins


# ---------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_HANDED_OUT: set[int] = set()
_PORTS = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range and never handed out before in this
    process. A port from bind(0) comes from the ephemeral range, which outgoing connections draw from too:
    between our check and the server's own bind, the app's or a Collector's exporter socket can take it
    (CI saw "bind: address already in use" that way)."""
    low, _ = _ephemeral_range()
    top = max(low - 1, 11000)
    for _ in range(1000):
        port = _PORTS.randint(10000, top)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (returned) or raise AssertionError after timeout.
    Exceptions inside ``check`` count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 (not ready yet)
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


@dataclass
class Process:
    """One child process with its log file. stop() signals only this pid."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def _spawn(name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str] | None = None) -> Process:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 (handed to the child, closed here right after the spawn)
    full_env = dict(os.environ)
    full_env.update(env or {})
    popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=full_env, cwd=str(workdir))
    log.close()
    return Process(name, popen, log_path)


def _wait_healthy(proc: Process, url: str, timeout: float) -> None:
    def ok() -> bool:
        if not proc.alive():
            raise RuntimeError("exited")
        http_get(url, timeout=2)
        return True

    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-4000:]}")
        try:
            ok()
            return
        except Exception:  # noqa: BLE001 (not ready yet)
            if time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(
                    f"{proc.name} not healthy at {url} after {timeout:.0f}s:\n{proc.log()[-4000:]}") from None
            time.sleep(0.2)


class _Managed:
    process: Process

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        """Everything the process wrote (stdout and stderr) so far."""
        return self.process.log()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def merge(base: Any, overlay: Any) -> Any:
    """confmap semantics: maps merge key by key; anything else in the overlay (lists too) replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return overlay


# ---------------------------------------------------------------------------------------------------
# Collector
# ---------------------------------------------------------------------------------------------------


def _config_paths(configs: Sequence[PathLike]) -> list[Path]:
    return [Path(c) if Path(c).is_absolute() else CONFIG_DIR / c for c in configs]


def loopback_env(grpc: int, http: int, health: int, telemetry: int) -> dict[str, str]:
    """Environment for collector-config/stack/loopback.yaml (the last --config)."""
    return {"OTELCOL_OTLP_GRPC_LISTEN": f"127.0.0.1:{grpc}", "OTELCOL_OTLP_HTTP_LISTEN": f"127.0.0.1:{http}",
            "OTELCOL_HEALTH_LISTEN": f"127.0.0.1:{health}", "OTELCOL_TELEMETRY_PORT": str(telemetry)}


@dataclass
class Collector(_Managed):
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
              name: str = "otelcol", timeout: float = 30.0) -> Collector:
        assert bins.otelcol is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        grpc, http, health, telemetry, prom = (free_port() for _ in range(5))
        paths = [*_config_paths(configs), LOOPBACK_OVERLAY]
        if extra:
            extra_path = workdir / f"extra-{name}.yaml"
            extra_path.write_text(yaml.safe_dump(dict(extra), sort_keys=False))
            paths.append(extra_path)
        full_env = {"PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{prom}", "GOMEMLIMIT": "400MiB"}
        full_env.update(loopback_env(grpc, http, health, telemetry))
        full_env.update(env or {})
        argv = [str(bins.otelcol)] + [f"--config={p}" for p in paths]
        proc = _spawn(name, argv, workdir, full_env)
        health_url = f"http://127.0.0.1:{health}/"
        _wait_healthy(proc, health_url, timeout)
        return cls(proc, f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http}", f"127.0.0.1:{prom}", health_url,
                   f"http://127.0.0.1:{telemetry}/metrics", paths, full_env)

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
        self.process = _spawn(f"{old.name}.{n}", list(old.popen.args), old.log_path.parent, self.env)
        _wait_healthy(self.process, self.health_url, timeout)

    @staticmethod
    def validate(bins: Binaries, configs: Sequence[PathLike],
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        assert bins.otelcol is not None
        full_env = dict(os.environ)
        full_env.update(env or {})
        argv = [str(bins.otelcol), "validate"] + [f"--config={p}" for p in _config_paths(configs)]
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


# ---------------------------------------------------------------------------------------------------
# Jaeger v2
# ---------------------------------------------------------------------------------------------------


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
class Jaeger(_Managed):
    process: Process
    otlp_grpc: str  # "127.0.0.1:port"
    otlp_http: str
    url: str  # query HTTP API / UI base, "http://127.0.0.1:port"

    @classmethod
    def start(cls, bins: Binaries, workdir: PathLike, name: str = "jaeger", timeout: float = 60.0) -> Jaeger:
        assert bins.jaeger is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        grpc, http, qhttp, qgrpc, health = (free_port() for _ in range(5))
        proc = _spawn(name, [str(bins.jaeger), "--config", str(JAEGER_CONFIG)], workdir,
                      jaeger_env(grpc, http, qhttp, qgrpc, health))
        _wait_healthy(proc, f"http://127.0.0.1:{health}/status", timeout)
        _wait_healthy(proc, f"http://127.0.0.1:{qhttp}/api/services", timeout)
        return cls(proc, f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http}", f"http://127.0.0.1:{qhttp}")

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

    def traces(self, service: str, tags: Mapping[str, str] | None = None, limit: int = 10000) -> list[dict]:
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


# ---------------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------------


def prometheus_config(scrape: Sequence[str], rules: Sequence[PathLike], scrape_interval: str,
                      evaluation_interval: str) -> dict[str, Any]:
    """Scrapes the Collector's prometheus exporter (honor_labels keeps job/instance from the resource,
    as in collector-config/compose/prometheus.yml) and loads the rule files."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(r) for r in rules],
        "scrape_configs": [{"job_name": "otelcol-exporter", "honor_labels": True,
                            "static_configs": [{"targets": list(scrape)}]}],
    }


@dataclass
class Prometheus(_Managed):
    process: Process
    url: str

    @classmethod
    def start(cls, bins: Binaries, workdir: PathLike, scrape: Sequence[str], rules: Sequence[PathLike] = (),
              scrape_interval: str = "1s", evaluation_interval: str = "1s", name: str = "prometheus",
              timeout: float = 60.0) -> Prometheus:
        assert bins.prometheus is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg = workdir / f"{name}.yml"
        cfg.write_text(yaml.safe_dump(prometheus_config(scrape, rules, scrape_interval, evaluation_interval)))
        argv = [str(bins.prometheus), f"--config.file={cfg}", f"--storage.tsdb.path={workdir / (name + '-data')}",
                f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"]
        proc = _spawn(name, argv, workdir)
        _wait_healthy(proc, f"http://127.0.0.1:{port}/-/ready", timeout)
        return cls(proc, f"http://127.0.0.1:{port}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        doc = json.loads(http_get(url, timeout=15))
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result vector ([{"metric": {...}, "value": [t, "v"]}, ...])."""
        return list(self.api("query", query=expr)["result"])

    def value(self, expr: str) -> float:
        """Sum of an instant query's values (0.0 when empty)."""
        return sum(float(r["value"][1]) for r in self.query(expr))

    def series(self, match: str) -> list[dict[str, str]]:
        return list(self.api("series", **{"match[]": match}))

    def alerts(self) -> list[dict]:
        """Active alerts: [{"labels": {"alertname": ...}, "state": "pending"|"firing", ...}]."""
        return list(self.api("alerts")["alerts"])

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}

    def rules(self) -> list[dict]:
        """Loaded rules (flattened over groups), each with name, query, health, state."""
        return [r for g in self.api("rules")["groups"] for r in g["rules"]]
