"""Resolve a client: what every span of one client carries, derived once per client and base URL.

Pure: :func:`view_client` reads the client object and its :class:`~.clients.ClientInfo` and returns a
frozen :class:`ClientView` (no reference back to any recorder), which the info keeps until the client's
base URL changes, it is re-parented or the process forks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import attributes as A
from .clients import ClientInfo
from .endpoints import sanitize_base_path
from .limits import MAX_HOST_CHARS, MIN_PATH_SECRET_CHARS
from .redact import mask_credentials, mask_value


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: it keys the endpoint cache
class ClientView:
    base_url: Any  # the client's base URL object, compared by identity to notice a change
    host: str  # masked, as on spans and metrics
    base_path: str  # sanitised (credential- and id-like segments as ``{token}``), for templates
    raw_base_path: str  # as in sent URLs, to cut it off them
    #: Base-path segments shown as placeholders (a gateway token, say): masking secrets of this client.
    path_secrets: tuple[str, ...]
    attrs: Mapping[str, Any]  # span attributes that never change for this client


def _split_base_url(base_url: Any) -> tuple[str, int, str]:
    """(host, port, base path without trailing slash) of an httpx URL, or of anything ``str`` gives a URL."""
    try:
        assert base_url is not None
        host = base_url.host or ""
        port = base_url.port or (443 if base_url.scheme == "https" else 80)
        return host, port, (base_url.path or "").rstrip("/")
    except Exception:  # noqa: BLE001 - an odd base URL type is read through its string form
        parts = urlsplit(str(base_url or ""))
        return parts.hostname or "", parts.port or 443, parts.path.rstrip("/")


def view_client(info: ClientInfo, client: Any, sdk_version: str) -> ClientView:
    """The span attributes and base path of ``client`` as it is now."""
    base_url = getattr(client, "base_url", None)
    host, port, raw_base_path = _split_base_url(base_url)
    key = getattr(client, "api_key", None)
    key = key if isinstance(key, str) else None
    base_path = sanitize_base_path(raw_base_path)
    if key and base_path:
        base_path = mask_credentials(base_path, key)
    shown_host = mask_value(host, key, limit=MAX_HOST_CHARS)
    attrs: dict[str, Any] = {
        A.HOST: shown_host,
        A.PORT: port,
        A.PROVIDER: info.provider,
        A.CLIENT_ID: info.client_id,
        A.CLIENT_ASYNC: info.is_async,
        A.SDK_VERSION: sdk_version,
    }
    if info.origin:
        attrs[A.CLIENT_ORIGIN] = info.origin
    if info.parent_id:
        attrs[A.CLIENT_PARENT_ID] = info.parent_id
    if info.copy_changed:
        attrs[A.CLIENT_COPY_CHANGED] = info.copy_changed
    shown = set(base_path.split("/"))
    path_secrets = tuple(seg for seg in raw_base_path.split("/")
                         if len(seg) >= MIN_PATH_SECRET_CHARS and seg not in shown)
    return ClientView(base_url, shown_host, base_path, raw_base_path, path_secrets, attrs)
