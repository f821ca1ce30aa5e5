"""Finding the stack's binaries: the Collector and Jaeger we build, Prometheus' tools from Debian.

First match wins: the environment (``OTEL_OPENAI_SCOPES_OTELCOL``, ``_JAEGER``, ``_PROMETHEUS``; the tests'
conftest keeps ``OTEL_OPENAI_SCOPES_*`` when it strips the caller's ``OTEL_*``), the cache ``build`` fills,
``~/.cache/otel-openai-scopes/prebuilt/`` (development machines only: ignored when CI is set), and for Debian's
tools their package path or PATH. ``require_*`` skips a test when something is missing and FAILS it under CI=true.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Union

from .paths import OTELCOL_NAME, cached_jaeger, cached_otelcol, stack_cache

PathLike = Union[str, Path]

#: Debian's tools: the package that brings each, and where it puts it (the name on PATH may differ).
DEBIAN_TOOLS = {
    "prometheus": ("prometheus", "/usr/bin/prometheus", "prometheus"),
    "promtool": ("prometheus", "/usr/bin/promtool", "promtool"),
    "alertmanager": ("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager"),
    "chromium": ("chromium", "/usr/bin/chromium", "chromium"),
}


@dataclass(frozen=True)
class Binaries:
    otelcol: Path | None
    jaeger: Path | None
    prometheus: Path | None

    def missing(self) -> list[str]:
        return [n for n in ("otelcol", "jaeger", "prometheus") if getattr(self, n) is None]


def executable(p: PathLike | None) -> Path | None:
    if p and Path(p).is_file() and os.access(p, os.X_OK):
        return Path(p)
    return None


def system_tool(name: str) -> Path | None:
    """One of :data:`DEBIAN_TOOLS` (``prometheus``, ``promtool``, ``alertmanager``, ``chromium``), or None."""
    _package, path, on_path = DEBIAN_TOOLS[name]
    return executable(path) or executable(shutil.which(on_path))


def find_binaries() -> Binaries:
    in_ci = bool(os.environ.get("CI"))
    prebuilt = Path.home() / ".cache" / "otel-openai-scopes" / "prebuilt"

    def pick(name: str, cached: Path, prebuilt_name: str) -> Path | None:
        for cand in (os.environ.get(f"OTEL_OPENAI_SCOPES_{name.upper()}"), cached,
                     None if in_ci else prebuilt / prebuilt_name):
            found = executable(cand)
            if found:
                return found
        return None

    prom = executable(os.environ.get("OTEL_OPENAI_SCOPES_PROMETHEUS")) or system_tool("prometheus")
    return Binaries(pick("otelcol", cached_otelcol(), OTELCOL_NAME), pick("jaeger", cached_jaeger(), "jaeger"), prom)


def _missing(msg: str) -> NoReturn:
    import pytest

    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set: these tests may not skip)")
    pytest.skip(msg)


def require_binaries(*names: str) -> Binaries:
    """The binaries, or skip (locally) / fail (CI=true) naming what is missing and how to get it."""
    bins = find_binaries()
    wanted = names or ("otelcol", "jaeger", "prometheus")
    missing = [n for n in bins.missing() if n in wanted]
    if missing:
        _missing(f"missing stack binaries {missing}: run `bash scripts/stack.sh build` (builds the Collector and "
                 f"Jaeger into {stack_cache()}, installs Debian's prometheus), or set "
                 f"OTEL_OPENAI_SCOPES_OTELCOL / _JAEGER / _PROMETHEUS")
    return bins


def require_tool(name: str) -> str:
    """A Debian tool's path (:data:`DEBIAN_TOOLS`), or skip locally / fail under CI=true."""
    found = system_tool(name)
    if found is None:
        package = DEBIAN_TOOLS[name][0]
        by = "bash scripts/test.sh" if name == "chromium" else "bash scripts/stack.sh build"
        _missing(f"{name} missing: `{by}` installs it (Debian's {package} package)")
    return str(found)
