"""The ``otel-openai-scopes`` console script: checks what the command line needs before loading it.

``pip install otel-openai-scopes`` installs the runtime only (what ``opentelemetry-instrument`` loads);
the commands need the ``cli`` extra. Without it this prints one line saying so and exits 2 instead of a
``ModuleNotFoundError`` traceback. It also refuses, before any parsing, an argument that looks like an
API key, without printing it: keys come from the environment or stdin, never argv (shell history, ``ps``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Sequence
from typing import Any

from .exit_codes import USAGE

INSTALL_HINT = "pip install 'otel-openai-scopes[cli]'"
#: import name -> distribution in the ``cli`` extra
CLI_MODULES = (("typer", "typer"), ("rich", "rich"), ("msgspec", "msgspec"), ("openai", "openai"),
               ("opentelemetry.sdk", "opentelemetry-sdk"))


def missing_cli_modules() -> list[str]:
    missing = []
    for module, dist in CLI_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(dist)
    return missing


_OPAQUE_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,}")


def key_shaped(arg: str) -> bool:
    """An argument (or ``--opt=value``) that is a key: an ``sk-`` key, a JWT, ``Bearer ...`` or a bare opaque
    token of 32+ characters (Azure keys). Paths, names and numbers never are: they are only ever tested whole."""
    from ..tokens import looks_like_jwt

    value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
    value = value.strip()
    if value.lower().startswith("bearer "):
        return True
    if value.startswith("sk-") and len(value) >= 20:
        return True
    return looks_like_jwt(value) or _OPAQUE_TOKEN.fullmatch(value) is not None


def refuse_key_arguments(argv: Sequence[str]) -> str | None:
    """The message refusing a key-shaped argument (which it never quotes), or None."""
    for position, arg in enumerate(argv, 1):
        if key_shaped(arg):
            return (f"otel-openai-scopes: argument {position} looks like an API key; refusing it (not shown). "
                    "Never put a key on the command line: name its environment variable with --key-env NAME "
                    "or pipe it with --stdin.")
    return None


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    missing = missing_cli_modules()
    if missing:
        print(f"otel-openai-scopes: the command line needs the 'cli' extra (missing: {', '.join(missing)}): "
              f"{INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(USAGE)
    refusal = refuse_key_arguments(args)
    if refusal:
        print(refusal, file=sys.stderr)
        raise SystemExit(USAGE)
    from .commands import app

    app(args=args, prog_name="otel-openai-scopes")


def __getattr__(name: str) -> Any:  # `from otel_openai_scopes.tools.cli import app` (tests, typer docs)
    if name == "app":
        from .commands import app

        return app
    raise AttributeError(name)


if __name__ == "__main__":
    main()
