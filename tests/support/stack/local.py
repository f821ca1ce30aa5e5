"""``scripts/stack.sh up|status|down``: the shipped pipeline (base.yaml + jaeger.yaml + stack/loopback.yaml) with
Jaeger v2 and Prometheus (the shipped rules, 10 s scrapes) left running for a person, on free loopback ports.

The state directory (:func:`paths.state_dir`) holds each server's config and log, ``<name>.pid`` with
``<name>.pid.exe`` (the binary it runs: a reused pid running something else is not ours) and ``endpoints.env``.
``down`` signals exactly the recorded pids that still run their recorded binary, nothing found by name.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .binaries import Binaries
from .collector import Collector
from .jaeger import Jaeger
from .paths import RULES, RUNBOOK
from .procs import Process
from .prometheus import Prometheus

NAMES = ("jaeger", "otelcol", "prometheus")  # start order; stopped in reverse
ENDPOINTS = "endpoints.env"


def _record(state: Path, proc: Process, binary: Path) -> None:
    (state / f"{proc.name}.pid").write_text(f"{proc.pid}\n")
    (state / f"{proc.name}.pid.exe").write_text(os.path.realpath(binary) + "\n")


def running_pid(state: Path, name: str) -> int | None:
    """The recorded pid of ``name`` if that process still runs the binary recorded beside it."""
    try:
        pid = int((state / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    try:
        exe = (state / f"{name}.pid.exe").read_text().strip()
    except OSError:
        exe = ""
    if exe:
        try:
            if os.readlink(f"/proc/{pid}/exe") != exe:
                return None  # the pid was reused by another program
        except OSError:
            pass  # no /proc: trust the pid
    return pid


def status(state: Path) -> tuple[int, str]:
    """(how many of the three run, the endpoint lines when all do)."""
    n = sum(running_pid(state, name) is not None for name in NAMES)
    path = state / ENDPOINTS
    return n, (path.read_text() if n == len(NAMES) and path.exists() else "")


def down(state: Path) -> list[str]:
    """Stop what ``up`` recorded; the lines to print."""
    lines = []
    for name in reversed(NAMES):
        pid = running_pid(state, name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _exists(pid):
                time.sleep(0.2)
            if _exists(pid):
                os.kill(pid, signal.SIGKILL)
            lines.append(f"stopped {name} (pid {pid})")
        for suffix in (".pid", ".pid.exe"):
            (state / f"{name}{suffix}").unlink(missing_ok=True)
    (state / ENDPOINTS).unlink(missing_ok=True)
    return lines or ["stack was not running"]


def _exists(pid: int) -> bool:
    """Still running (a zombie awaiting its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def up(state: Path, bins: Binaries) -> tuple[str, str]:
    """Start the three detached (they outlive this process); (endpoint lines, how to point an app at them).
    Raises RuntimeError (with the failing server's log tail) after stopping whatever it had started."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        jaeger = Jaeger.start(bins, state, detach=True)
        _record(state, jaeger.process, bins.jaeger)  # type: ignore[arg-type]
        col = Collector.start(bins, state, ["base.yaml", "jaeger.yaml"], env={"JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc},
                              timeout=60, detach=True)
        _record(state, col.process, bins.otelcol)  # type: ignore[arg-type]
        # The shipped rules' own group intervals (10 s for the verdicts, 1m for the rest) override
        # evaluation_interval; runbook links point at this checkout's RUNBOOK.md.
        prom = Prometheus.start(
            bins, state, scrape=[col.prometheus_exporter], rules=[RULES], scrape_interval="10s",
            evaluation_interval="10s", external_labels={"openai_scopes_runbook_url": f"file://{RUNBOOK}"},
            internal=[col.telemetry_target], retention="2d", header="written by scripts/stack.sh up", detach=True)
        _record(state, prom.process, bins.prometheus)  # type: ignore[arg-type]
    except RuntimeError:
        down(state)
        raise
    grpc = col.otlp_grpc
    lines = (f"OTLP_GRPC_ENDPOINT=http://{grpc}\nOTLP_HTTP_ENDPOINT={col.otlp_http}\n"
             f"JAEGER_URL={jaeger.url}\nPROMETHEUS_URL={prom.url}\n")
    (state / ENDPOINTS).write_text(lines)
    hint = (f"(logs and pids in {state}; stop with: bash scripts/stack.sh down)\n"
            "Point an app at it (plaintext gRPC: the http:// scheme tells the OTLP exporter not to use TLS):\n"
            f"  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc} OTEL_EXPORTER_OTLP_PROTOCOL=grpc \\\n"
            "         OTEL_METRIC_EXPORT_INTERVAL=10000 OTEL_SERVICE_NAME=my-app\n"
            "  opentelemetry-instrument --traces_exporter otlp --metrics_exporter otlp python app.py\n")
    return lines, hint
