"""Processes we start and wait for: one child per server with its own log file, stopped by its own pid only."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


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
    popen: subprocess.Popen  # type: ignore[type-arg]
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


def spawn(name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str] | None = None,
          detach: bool = False) -> Process:
    """Start ``argv`` in ``workdir`` with ``env`` added to ours, output to ``workdir/<name>.log``. ``detach``
    puts it in a session of its own, so it outlives us and our terminal (``scripts/stack.sh up``)."""
    log_path = workdir / f"{name}.log"
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(log_path, "wb") as log:  # the child has its own copy of the descriptor
        popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, cwd=str(workdir), start_new_session=detach)
    return Process(name, popen, log_path)


def wait_healthy(proc: Process, url: str, timeout: float) -> None:
    """Until ``url`` answers 2xx; raises RuntimeError with the log's tail when the process exits first or the
    time runs out (then the process is stopped)."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-4000:]}")
        try:
            http_get(url, timeout=2)
            return
        except Exception:  # noqa: BLE001 (not ready yet)
            if time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(
                    f"{proc.name} not healthy at {url} after {timeout:.0f}s:\n{proc.log()[-4000:]}") from None
            time.sleep(0.2)


class Managed:
    """A server object owning one :class:`Process`: ``stop()``, ``log()``, usable as a context manager."""

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
