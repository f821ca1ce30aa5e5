"""``scripts/stack.sh build``: the Collector (collector-config/builder-config.yaml through the Collector
Builder) and Jaeger v2 (cmd/jaeger) compiled from their Go modules into the cache outside the repository, and
Debian's Prometheus and Alertmanager installed when missing. A second run finds everything cached."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import debian
from .binaries import system_tool
from .paths import (
    BUILDER_CONFIG,
    JAEGER_VERSION,
    OTELCOL_VERSION,
    cached_builder,
    cached_jaeger,
    cached_otelcol,
    stack_cache,
)

JAEGER_MODULE = "github.com/jaegertracing/jaeger/cmd/jaeger"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"


class BuildError(Exception):
    pass


def _go() -> str:
    """go on PATH, or the official tarball's /usr/local/go/bin/go (a non-login shell may lack it on PATH)."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not found:
        raise BuildError("go not found: the Collector and Jaeger are built from their Go modules (https://go.dev/dl/)")
    return found


def _run_logged(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    with open(log, "ab") as out:
        rc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise BuildError(f"{' '.join(argv[:2])} failed (full log: {log}):\n{tail}")


def _install(built: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.move(str(built), tmp)
    tmp.replace(target)


def build_otelcol() -> None:
    target = cached_otelcol()
    if os.access(target, os.X_OK):
        print("== Collector: cached")
        return
    go = _go()
    builder = cached_builder()
    if not os.access(builder, os.X_OK):
        print(f"== installing the OpenTelemetry Collector Builder v{OTELCOL_VERSION}")
        if subprocess.run([go, "install", f"{BUILDER_MODULE}@v{OTELCOL_VERSION}"],
                          env=dict(os.environ, GOBIN=str(builder.parent))).returncode != 0:
            raise BuildError(f"go install {BUILDER_MODULE}@v{OTELCOL_VERSION} failed")
    work = Path(tempfile.mkdtemp(prefix="otelcol-build.", dir=stack_cache()))
    print("== building the Collector from collector-config/builder-config.yaml (first time: a few minutes)")
    # Same manifest, output into the scratch dir (builder-config.yaml says output_path: ./_build).
    manifest = re.sub(r"^(  output_path:).*$", rf"\1 {work}/dist", BUILDER_CONFIG.read_text(), flags=re.M)
    (work / "builder-config.yaml").write_text(manifest)
    _run_logged([str(builder), "--config", str(work / "builder-config.yaml")], work, work / "build.log")
    _install(work / "dist" / target.name, target)
    shutil.rmtree(work)


def build_jaeger() -> None:
    target = cached_jaeger()
    if os.access(target, os.X_OK):
        print("== Jaeger: cached")
        return
    go = _go()
    print(f"== building Jaeger v2 ({JAEGER_MODULE} v{JAEGER_VERSION}; first time: several minutes)")
    work = Path(tempfile.mkdtemp(prefix="jaeger-build.", dir=stack_cache()))
    log = work / "build.log"
    # `go install ...@v1.75.0` refuses the module's replace directives; a throwaway module that requires it works.
    _run_logged([go, "mod", "init", "jaegerbuild"], work, log)
    _run_logged([go, "get", "-tool", f"{JAEGER_MODULE}@v{JAEGER_VERSION}"], work, log)
    _run_logged([go, "build", "-o", str(work / "jaeger"), JAEGER_MODULE], work, log)
    _install(work / "jaeger", target)
    shutil.rmtree(work)


def verify_jaeger_v2() -> None:
    """Jaeger v2 is a Collector build with the jaeger_storage and jaeger_query extensions."""
    out = subprocess.run([str(cached_jaeger()), "components"], capture_output=True, text=True)
    if out.returncode != 0:
        raise BuildError(f"{cached_jaeger()} components failed: not a Jaeger v2 binary")
    for ext in ("jaeger_storage", "jaeger_query"):
        if not re.search(rf"name: {ext}$", out.stdout, re.M):
            raise BuildError(f"{cached_jaeger()} lacks the {ext} extension: not Jaeger v2")


def build() -> dict[str, str]:
    """Everything ``up`` and the stack tests need; returns the binaries' paths by name."""
    stack_cache().mkdir(parents=True, exist_ok=True)
    build_otelcol()
    build_jaeger()
    verify_jaeger_v2()
    try:
        debian.ensure(["prometheus", "alertmanager"])
    except debian.CannotInstall as exc:
        raise BuildError(str(exc)) from None
    if subprocess.run([str(cached_otelcol()), "--version"], capture_output=True).returncode != 0:
        raise BuildError(f"{cached_otelcol()} does not run")
    return {"OTELCOL": str(cached_otelcol()), "JAEGER": str(cached_jaeger()),
            "PROMETHEUS": str(system_tool("prometheus")), "ALERTMANAGER": str(system_tool("alertmanager"))}
