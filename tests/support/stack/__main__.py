"""The command line behind ``scripts/stack.sh``: build | up | status | down | path NAME | components."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from . import build as building
from . import local
from .binaries import find_binaries, system_tool
from .paths import OTELCOL_VERSION, cached_jaeger, cached_otelcol, stack_cache, state_dir

USAGE = "usage: bash scripts/stack.sh build|up|down|status|path <name>|components"
PATHS = ("otelcol", "jaeger", "prometheus", "alertmanager")


class Die(Exception):
    """A message for stderr and exit status 1."""


def cmd_build() -> None:
    paths = building.build()
    print(f"stack binaries (cache {stack_cache()}):")
    for name, path in paths.items():
        print(f"{name}={path}")


def cmd_up() -> None:
    bins = find_binaries()
    if bins.missing():
        raise Die(f"binaries missing ({', '.join(bins.missing())}): run 'bash scripts/stack.sh build' first")
    state = state_dir()
    _n, lines = local.status(state)
    if lines:
        print(f"stack already running (state {state}):", file=sys.stderr)
        print(lines, end="")
        return
    local.down(state)
    try:
        lines, hint = local.up(state, bins)
    except RuntimeError as exc:
        raise Die(f"the stack did not start (logs in {state}):\n{exc}") from None
    print(lines, end="", flush=True)
    print(hint, end="", file=sys.stderr)


def cmd_status() -> int:
    state = state_dir()
    n, lines = local.status(state)
    if lines:
        print(lines, end="")
        return 0
    if n == 0:
        print(f"stack not running (state {state})", file=sys.stderr)
    else:
        print(f"stack partly running ({n} of {len(local.NAMES)}; state {state}): run down, then up", file=sys.stderr)
    return 1


def cmd_path(name: str) -> None:
    if name not in PATHS:
        raise Die(f"usage: stack.sh path {'|'.join(PATHS)}")
    if name == "otelcol":
        print(cached_otelcol())
    elif name == "jaeger":
        print(cached_jaeger())
    else:
        print(system_tool(name) or "")


def cmd_components() -> None:
    """The Collector's component list, as tests/data keeps it (buildinfo and providers omitted)."""
    try:
        import yaml
    except ImportError:
        raise Die("components needs PyYAML: create .venv first (bash scripts/test.sh)") from None
    if not cached_otelcol().exists():
        raise Die("run 'bash scripts/stack.sh build' first")
    out = subprocess.run([str(cached_otelcol()), "components"], capture_output=True, text=True, check=True).stdout
    doc = yaml.safe_load(out)
    doc.pop("buildinfo", None)
    doc.pop("providers", None)
    print(f"# Components of the otelcol-openai-scopes v{OTELCOL_VERSION} distribution "
          "(collector-config/builder-config.yaml), as printed by")
    print("# `otelcol-openai-scopes components` (providers and buildinfo omitted). Regenerate after editing "
          "builder-config.yaml:")
    print(f"#   bash scripts/stack.sh components > tests/data/otelcol-openai-scopes-v{OTELCOL_VERSION}-components.yaml")
    print("# tests/test_stack_validate.py checks that the built binary still prints exactly these components.")
    print(yaml.safe_dump(doc, sort_keys=False, width=200), end="")


def main(argv: Sequence[str]) -> int:
    cmd = argv[0] if argv else ""
    try:
        if cmd == "build":
            cmd_build()
        elif cmd == "up":
            cmd_up()
        elif cmd == "down":
            print("\n".join(local.down(state_dir())))
        elif cmd == "status":
            return cmd_status()
        elif cmd == "path":
            cmd_path(argv[1] if len(argv) > 1 else "")
        elif cmd == "components":
            cmd_components()
        else:
            print(USAGE, file=sys.stderr)
            return 2
    except (Die, building.BuildError) as exc:
        print(f"stack.sh: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
