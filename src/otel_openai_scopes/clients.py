"""Identity of OpenAI client objects: an id, where and when each was built, and what it was built with.

The corrupted-shared-client failure mode is only visible if every span says which client object
sent it and whether that client still holds the credentials it was constructed with. Entries are
weak (a dropped client frees its entry) and bounded (past ``max_clients`` the oldest is forgotten
and gets a fresh id if it is used again).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from . import attributes as A

_PROCESS_TAG = os.urandom(3).hex()
_SKIP_DIRS: tuple[str, ...] = ()


# This package's own patch-point modules (not the demo or CLI, which are user code of the SDK).
_OWN_MODULES = ("instrumentor.py", "recorder.py", "clients.py", "streams.py")


def _skip_prefixes() -> tuple[str, ...]:
    global _SKIP_DIRS
    if not _SKIP_DIRS:
        here = os.path.dirname(__file__)
        prefixes = [os.path.join(here, name) for name in _OWN_MODULES]
        for name in ("openai", "wrapt"):
            mod = sys.modules.get(name)
            if mod is not None and getattr(mod, "__file__", None):
                prefixes.append(os.path.dirname(mod.__file__) + os.sep)
        _SKIP_DIRS = tuple(prefixes)
    return _SKIP_DIRS


def user_code_origin(start_depth: int = 2) -> str:
    """``file:line`` of the first frame outside openai, wrapt and this package's patch points."""
    try:
        frame = sys._getframe(start_depth)
    except ValueError:
        return ""
    skip = _skip_prefixes()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skip) and not filename.startswith("<frozen"):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _value_hash(value: Any) -> int:
    """Cheap per-process comparison token for a credential; never exported, never reversible."""
    try:
        return hash(value)
    except TypeError:
        return id(value)


@dataclass
class ClientInfo:
    """One client object as the instrumentation knows it."""

    client_id: str
    is_async: bool
    provider: str
    origin: str = ""
    parent_id: str = ""
    key_is_callable: bool = False
    key_token: int = 0
    organization: Any = None
    project: Any = None
    base_url: Any = None
    ref: Any = field(default=None, repr=False)
    # Per-client state the call path caches (span attributes that never change for this client).
    static_attributes: dict[str, Any] = field(default_factory=dict, repr=False)

    def mutated_fields(self, client: Any) -> list[str]:
        """Which of api_key, organization, project, base_url differ now from construction."""
        # Identity first: an unchanged client returns the very objects it was built with, and comparing
        # two httpx URL objects with == costs more than the rest of this check together.
        changed = []
        if not self.key_is_callable:
            key = getattr(client, "api_key", None)
            if _value_hash(key) != self.key_token:
                changed.append("api_key")
        org = getattr(client, "organization", None)
        if org is not self.organization and org != self.organization:
            changed.append("organization")
        project = getattr(client, "project", None)
        if project is not self.project and project != self.project:
            changed.append("project")
        base_url = getattr(client, "base_url", None)
        if base_url is not self.base_url and base_url != self.base_url:
            changed.append("base_url")
        return changed


class ClientRegistry:
    """Bounded, weak map from client object to :class:`ClientInfo`. Thread-safe."""

    def __init__(self, max_clients: int = 10_000, capture_origin: bool = True) -> None:
        self.max_clients = max(1, int(max_clients))
        self.capture_origin = capture_origin
        self._by_id: dict[int, ClientInfo] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, client: Any) -> ClientInfo | None:
        info = self._by_id.get(id(client))
        if info is not None and info.ref is not None and info.ref() is not client:
            return None  # id reused by a new object after an eviction race
        return info

    def get_or_register(self, client: Any) -> ClientInfo:
        info = self.get(client)
        if info is None:
            info = self.register(client, origin="", before_instrumentation=True)
        return info

    def register(
        self, client: Any, origin: str | None = None, before_instrumentation: bool = False, origin_depth: int = 3
    ) -> ClientInfo:
        """Snapshot ``client`` as constructed now. ``origin=None`` walks the stack for user code."""
        if origin is None:
            origin = user_code_origin(origin_depth) if self.capture_origin else ""
        if before_instrumentation and not origin:
            origin = "<created before instrumentation>"
        key = getattr(client, "api_key", None)
        key_is_callable = callable(key) or getattr(client, "_api_key_provider", None) is not None
        name = type(client).__name__
        info = ClientInfo(
            client_id=f"{_PROCESS_TAG}-{next(self._counter)}",
            is_async=name.startswith("Async"),
            provider=A.PROVIDER_AZURE if "Azure" in name else A.PROVIDER_OPENAI,
            origin=origin,
            key_is_callable=key_is_callable,
            key_token=_value_hash(key),
            organization=getattr(client, "organization", None),
            project=getattr(client, "project", None),
            base_url=getattr(client, "base_url", None),
        )
        oid = id(client)
        try:
            info.ref = weakref.ref(client)
            weakref.finalize(client, self._forget, oid, info)
        except TypeError:
            info.ref = None
        with self._lock:
            self._by_id[oid] = info
            while len(self._by_id) > self.max_clients:
                oldest = next(iter(self._by_id))
                del self._by_id[oldest]
                self.evicted += 1
        return info

    def _forget(self, oid: int, info: ClientInfo) -> None:
        with self._lock:
            if self._by_id.get(oid) is info:
                del self._by_id[oid]
