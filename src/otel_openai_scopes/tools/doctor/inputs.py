"""What doctor is given: the key (environment or stdin, never argv) and the options, checked before anything runs."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import TextIO
from urllib.parse import urlsplit

from ..urls import ShownUrl


class UsageError(Exception):
    """Bad invocation: exit 2 with this message (which never contains the key)."""


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_key(key_env: str, use_stdin: bool, environ: Mapping[str, str], stdin: TextIO | None = None) -> str:
    """The key from ``environ[key_env]`` or the first line of stdin. Never echoes what it read."""
    if not _ENV_NAME.match(key_env or ""):
        raise UsageError("--key-env takes the NAME of an environment variable (letters, digits, underscores), "
                         "not a key: never put a key on the command line.")
    if use_stdin:
        key = (stdin or sys.stdin).readline().strip()
        if not key:
            raise UsageError("no key: --stdin was given but standard input was empty.")
        return key
    key = (environ.get(key_env) or "").strip()
    if not key:
        raise UsageError(f"no key: set {key_env} (or name another variable with --key-env NAME), or pipe the key "
                         "with --stdin. The key is never read from the command line.")
    return key


def check_options(repeat: int, interval: float, timeout: float) -> None:
    if repeat < 0:
        raise UsageError("--repeat must be >= 0 (0: until interrupted).")
    if not interval >= 0 or not timeout > 0:  # NaN fails both
        raise UsageError("--interval must be >= 0 and --timeout > 0.")


def check_base_url(url: str) -> None:
    """Raise UsageError unless ``url`` is an http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise UsageError("the base URL is malformed (not shown: it may hold credentials): use "
                         "http(s)://HOST[:PORT]/v1 (from --base-url or OPENAI_BASE_URL).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the base URL ({ShownUrl.of(url).text}) is not an http(s) URL with a host: use "
                         "http(s)://HOST[:PORT]/v1 (from --base-url or OPENAI_BASE_URL).")
