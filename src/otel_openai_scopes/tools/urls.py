"""URLs as the command-line tools print them: the way the instrumentation's spans show them.

A base URL may carry credentials in its user-info, query or path (a gateway token: ``/gw/<token>/v1``), and an
OTLP endpoint a password in its user-info. Shown here as spans show a client's URL (``url.template`` and
``server.address``): no user-info, no query or fragment, identifier- and credential-like path segments as
``{token}``, anything a given secret shares masked. It reuses the runtime's
:func:`~otel_openai_scopes.endpoints.sanitize_base_path` and masking, so both always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..endpoints import sanitize_base_path
from ..redact import WINDOW, mask_credentials, mask_value


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
