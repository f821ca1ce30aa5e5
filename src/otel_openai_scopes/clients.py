"""Identity of OpenAI client objects: an id, where each was built, and what it was built with.

The corrupted-shared-client failure mode is only visible if every span says which client object
sent it and whether that client still holds the credentials it was constructed with.

Each client carries its own :class:`ClientInfo` (an attribute on the object, so it lives and dies
with the client and a lookup is one attribute read, however many clients are alive). Objects that
cannot carry it fall back to a weak, bounded index (past ``max_clients`` the oldest is forgotten).
Ids are ``<process tag>-<serial>``; a forked child gets a new tag (:mod:`.forking`), and its
inherited clients are renamed the first time it uses them.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from types import FrameType
from typing import Any, Callable

from . import attributes as A
from .forking import PROCESS, after_fork_in_child

#: Attribute of a client object that holds its :class:`ClientInfo`.
INFO_ATTRIBUTE = "_otel_openai_scopes_info"
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
            mod_file = getattr(mod, "__file__", None)
            if mod_file:
                prefixes.append(os.path.dirname(mod_file) + os.sep)
        _SKIP_DIRS = tuple(prefixes)
    return _SKIP_DIRS


def user_code_origin(start_depth: int = 2) -> str:
    """``file:line`` of the first frame outside openai, wrapt and this package's patch points."""
    frame: FrameType | None
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


class ClientInfo:
    """One client object as the instrumentation knows it: identity and construction values."""

    __slots__ = (
        "__weakref__",
        "auth_token",
        "base_url",
        "client_id",
        "generation",
        "is_async",
        "key_is_callable",
        "key_token",
        "organization",
        "origin",
        "parent",
        "parent_id",
        "project",
        "provider",
        "ref",
        "serial",
        "state",
    )

    def __init__(self, serial: int, is_async: bool, provider: str, origin: str = "", key: Any = None,
                 key_is_callable: bool = False, organization: Any = None, project: Any = None,
                 base_url: Any = None) -> None:
        self.serial = serial
        self.generation = PROCESS.generation
        self.client_id = f"{PROCESS.tag}-{serial}"
        self.parent: ClientInfo | None = None
        self.parent_id = ""
        self.is_async = is_async
        self.provider = provider
        self.origin = origin
        self.key_is_callable = key_is_callable
        self.key_token = _value_hash(key)
        # What the SDK sends for this key (``Bearer <key>``), hashed: compared with each attempt's header.
        self.auth_token = _value_hash("Bearer " + key) if isinstance(key, str) else 0
        self.organization = organization
        self.project = project
        self.base_url = base_url
        self.ref: Callable[[], Any] | None = None
        #: Per-client state of the recorder (attributes cached for this client); None until first used.
        self.state: Any = None

    def renew_if_forked(self) -> None:
        """In a forked child, the first use renames the client into the child's process tag."""
        if self.generation != PROCESS.generation:
            self.generation = PROCESS.generation
            self.client_id = f"{PROCESS.tag}-{self.serial}"
            if self.parent is not None:
                self.parent.renew_if_forked()
                self.parent_id = self.parent.client_id
            self.state = None

    def set_parent(self, parent: ClientInfo) -> None:
        self.parent = parent
        self.parent_id = parent.client_id
        self.state = None

    def mutated_fields(self, client: Any, auth: str | None = None, api_key_header: str | None = None) -> list[str]:
        """Which of api_key, organization, project, base_url differ now from construction.

        Called when an attempt is sent: ``auth`` / ``api_key_header`` are the credential headers as sent
        (the key is judged from them when given, else from the client's attribute).
        """
        # Identity first: an unchanged client returns the very objects it was built with, and comparing
        # two httpx URL objects with == costs more than the rest of this check together.
        changed = []
        if not self.key_is_callable:
            if self.auth_token and auth is not None:
                if _value_hash(auth) != self.auth_token:
                    changed.append("api_key")
            elif self.auth_token and api_key_header is not None:  # Azure: the key in an api-key header
                if _value_hash(api_key_header) != self.key_token:
                    changed.append("api_key")
            elif _value_hash(getattr(client, "api_key", None)) != self.key_token:
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


_registries: weakref.WeakSet[ClientRegistry] = weakref.WeakSet()


class ClientRegistry:
    """Client object -> :class:`ClientInfo`. Thread-safe and fork-safe.

    The info rides on the client (see the module docstring); the index below is only for objects that
    cannot carry an attribute, weak and bounded by ``max_clients``.
    """

    def __init__(self, max_clients: int = 10_000, capture_origin: bool = True) -> None:
        self.max_clients = max(1, int(max_clients))
        self.capture_origin = capture_origin
        self._by_id: dict[int, ClientInfo] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.registered = 0
        _registries.add(self)

    def __len__(self) -> int:
        """Entries in the bounded index (clients that carry their own info are not counted)."""
        return len(self._by_id)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def get(self, client: Any) -> ClientInfo | None:
        try:
            info = client.__dict__.get(INFO_ATTRIBUTE)
        except AttributeError:
            info = self._by_id.get(id(client))
        if info is None:
            return None
        ref = info.ref
        if ref is not None and ref() is not client:
            return None  # copied with copy.copy, or an id reused after an eviction race
        if info.generation != PROCESS.generation:
            info.renew_if_forked()
        return info  # type: ignore[no-any-return]

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
            serial=next(_serials),
            is_async=name.startswith("Async"),
            provider=A.PROVIDER_AZURE if "Azure" in name else A.PROVIDER_OPENAI,
            origin=origin,
            key=key,
            key_is_callable=key_is_callable,
            organization=getattr(client, "organization", None),
            project=getattr(client, "project", None),
            base_url=getattr(client, "base_url", None),
        )
        try:
            info.ref = weakref.ref(client)
        except TypeError:
            info.ref = None
        self.registered += 1
        try:
            client.__dict__[INFO_ATTRIBUTE] = info
            return info
        except (AttributeError, TypeError):
            pass
        oid = id(client)
        if info.ref is not None:
            weakref.finalize(client, self._forget, oid, info)
        with self._lock:
            self._by_id[oid] = info
            while len(self._by_id) > self.max_clients:
                del self._by_id[next(iter(self._by_id))]
                self.evicted += 1
        return info

    def _forget(self, oid: int, info: ClientInfo) -> None:
        with self._lock:
            if self._by_id.get(oid) is info:
                del self._by_id[oid]


_serials = itertools.count(1)


def _after_fork() -> None:
    for registry in list(_registries):
        registry._after_fork()


after_fork_in_child(_after_fork)
