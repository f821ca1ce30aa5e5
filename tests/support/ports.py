"""Free loopback ports for the servers a test starts, and ports held closed (bound, not listening)."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

_HANDED_OUT: set[int] = set()
_PORTS = random.Random(os.getpid() ^ time.monotonic_ns())


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range and never handed out before in this
    process. A port from bind(0) comes from the ephemeral range, which outgoing connections draw from too:
    between our check and the server's own bind, the app's or a Collector's exporter socket can take it
    (CI saw "bind: address already in use" that way)."""
    low, _ = ephemeral_range()
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


def hold(port: int = 0) -> socket.socket:
    """A loopback port reserved by a bound socket that does not listen (connecting is refused, as to a stopped
    server); ``port=0`` picks one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's TIME_WAIT connections
    s.bind(("127.0.0.1", port))
    return s


def release(socks: list[socket.socket]) -> None:
    """Close held ports (the list is emptied)."""
    while socks:
        socks.pop().close()
