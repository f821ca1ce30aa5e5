"""Debian packages the stack and the tests need, installed with apt-get when missing (as root).

While apt-get runs, a ``/usr/sbin/policy-rc.d`` that answers 101 forbids starting services: the prometheus
package would otherwise start a server, which we would then have to stop (and a user's own Prometheus is never
touched). We remove that file afterwards only if we created it.

    python3 -m tests.support.debian prometheus alertmanager chromium    # tools, as in stack.binaries.DEBIAN_TOOLS
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .stack.binaries import DEBIAN_TOOLS, system_tool

POLICY = Path("/usr/sbin/policy-rc.d")
#: Packages installed with their recommends (chromium's fonts: text in screenshots); the others without.
WITH_RECOMMENDS = {"chromium"}


class CannotInstall(Exception):
    """Not root, no apt-get, or apt-get failed."""


def _apt_get(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True)


def install(packages: Sequence[str]) -> None:
    """``apt-get install`` these packages, services forbidden to start; ``apt-get update`` first only when the
    install fails (a fresh machine's package lists may be empty)."""
    if os.getuid() != 0 or not shutil.which("apt-get"):
        raise CannotInstall(f"cannot install {' '.join(packages)}: not root or no apt-get (apt-get install "
                            f"{' '.join(packages)} and re-run)")
    created = False
    if not POLICY.exists():
        POLICY.write_text("#!/bin/sh\nexit 101\n")
        POLICY.chmod(0o755)
        created = True
    try:
        for package in packages:
            args = ["install", "-y", "-qq"] + ([] if package in WITH_RECOMMENDS else ["--no-install-recommends"])
            out = _apt_get(*args, package)
            if out.returncode != 0:
                _apt_get("update", "-qq")
                out = _apt_get(*args, package)
            if out.returncode != 0:
                raise CannotInstall(f"apt-get install {package} failed:\n{out.stderr[-2000:]}")
    finally:
        if created:
            POLICY.unlink()


def ensure(tools: Sequence[str], say: bool = True) -> None:
    """Install the packages of the tools that are missing (names of stack.binaries.DEBIAN_TOOLS)."""
    missing = [t for t in tools if system_tool(t) is None]
    packages = sorted({DEBIAN_TOOLS[t][0] for t in missing})
    for tool in tools:
        if tool not in missing and say:
            print(f"== {tool}: {system_tool(tool)}")
    if not packages:
        return
    if say:
        print(f"== installing Debian's {' '.join(packages)} (policy-rc.d forbids starting services)")
    install(packages)
    still = [t for t in missing if system_tool(t) is None]
    if still:
        raise CannotInstall(f"{' '.join(still)} still not found after apt-get install")


def main(argv: Sequence[str]) -> int:
    unknown = [t for t in argv if t not in DEBIAN_TOOLS]
    if unknown or not argv:
        print(f"usage: python3 -m tests.support.debian {'|'.join(DEBIAN_TOOLS)} ...", file=sys.stderr)
        return 2
    try:
        ensure(argv)
    except CannotInstall as exc:
        print(f"debian: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
