"""What doctor is given: the key (environment or stdin, never argv), the options, and URLs shown as spans show them.

A base URL may carry credentials in its user-info, query or path (a gateway token: ``/gw/<token>/v1``); doctor
shows it the way the instrumentation's spans do (``url.template`` and ``server.address``): no user-info, no query,
identifier- and credential-like path segments as ``{token}``, anything the key shares masked. It reuses the
runtime's :func:`~otel_openai_scopes.endpoints.sanitize_base_path` and masking, so both always agree.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from ...endpoints import sanitize_base_path
from ...redact import WINDOW, mask_credentials, mask_value


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


@dataclass(frozen=True)
class ShownUrl:
    """A URL as doctor prints it, and the raw path segments it hid (masked wherever a server quotes them)."""

    text: str
    base_path: str  # the shown path, prefix of every shown template (``/gw/{token}/v1``)
    hidden: tuple[str, ...] = ()

    @classmethod
    def of(cls, url: str, *secrets: str | None) -> ShownUrl:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return cls("(malformed URL, not shown)", "")
        raw_path = parts.path.rstrip("/")
        base_path = sanitize_base_path(raw_path)
        if base_path:
            base_path = mask_credentials(base_path, *secrets)
        host = mask_value(parts.hostname or "", *secrets, limit=255)
        shown = set(base_path.split("/"))
        hidden = tuple(seg for seg in raw_path.split("/") if len(seg) >= WINDOW and seg not in shown)
        netloc = host + (f":{port}" if port else "")
        scheme = f"{parts.scheme}://" if parts.scheme else ""
        return cls(f"{scheme}{netloc}{base_path}", base_path, hidden)


def display_url(url: str, *secrets: str | None) -> str:
    """``url`` as doctor prints it: no user-info, query or fragment; path tokens as ``{token}``."""
    return ShownUrl.of(url, *secrets).text
