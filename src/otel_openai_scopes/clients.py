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
import time
import weakref
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import attributes as A
from .fingerprint import describe
from .forking import PROCESS, after_fork_in_child
from .text import valid_text

if TYPE_CHECKING:
    from .client_view import ClientView

#: Attribute of a client object that holds its :class:`ClientInfo`.
INFO_ATTRIBUTE = "_otel_openai_scopes_info"
_SKIP_DIRS: tuple[str, ...] = ()


# This package's own patch-point modules (not the demo or CLI, which are user code of the SDK).
_OWN_MODULES = ("instrumentor.py", "wrappers.py", "recorder.py", "clients.py", "streams.py")


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
    """``file:line`` of the first frame outside openai, wrapt and this package's patch points; valid text (a path
    that is not UTF-8 holds lone surrogates, which no exporter can encode)."""
    frame: FrameType | None
    try:
        frame = sys._getframe(start_depth)
    except ValueError:
        return ""
    skip = _skip_prefixes()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skip) and not filename.startswith("<frozen"):
            return valid_text(f"{filename}:{frame.f_lineno}")
        frame = frame.f_back
    return ""


KeyFingerprint = Callable[[Any], Optional[str]]


def key_source(client: Any) -> Any:
    """What a client authenticates with: its key provider when it has one (openai 2.x+ takes a callable
    ``api_key``), its workload identity (openai 3.x: a token exchange; ``api_key`` then holds a placeholder),
    else its ``api_key``. Compared by identity or equality, never kept."""
    for name in ("_api_key_provider", "workload_identity"):
        source = getattr(client, name, None)
        if source is not None:
            return source
    return getattr(client, "api_key", None)


def sdk_refreshes_key(client: Any) -> bool:
    """Whether the SDK itself obtains the credential a client sends (a key provider, a workload identity's token
    exchange), so that a new credential at each refresh is no mutation and only the sent one can be described."""
    return callable(getattr(client, "api_key", None)) or any(
        getattr(client, name, None) is not None for name in ("_api_key_provider", "workload_identity",
                                                             "_workload_identity_auth"))


class ClientInfo:
    """One client object as the instrumentation knows it: identity and construction values.

    No raw credential is kept: the key is held as its fingerprint (``key_fingerprint``, None when the key
    is not a string), in the fingerprint scheme named by ``scheme``.
    """

    __slots__ = (
        "__weakref__",
        "base_url",
        "client_id",
        "copied_at",
        "copy_changed",
        "generation",
        "is_async",
        "key_fingerprint",
        "key_is_callable",
        "organization",
        "origin",
        "parent",
        "parent_id",
        "project",
        "provider",
        "ref",
        "scheme",
        "sent_fingerprint",
        "serial",
        "view",
    )

    def __init__(self, serial: int, is_async: bool, provider: str, origin: str = "", key_fingerprint: str | None = None,
                 key_is_callable: bool = False, organization: Any = None, project: Any = None,
                 base_url: Any = None, scheme: str = "") -> None:
        self.serial = serial
        self.generation = PROCESS.generation
        self.client_id = f"{PROCESS.tag}-{serial}"
        self.parent: ClientInfo | None = None
        self.parent_id = ""
        #: Which of api_key, organization, project, base_url a copy was given different from its parent.
        self.copy_changed: tuple[str, ...] = ()
        #: When a copy was made (epoch seconds; 0.0 for a client that is no copy).
        self.copied_at = 0.0
        self.is_async = is_async
        self.provider = provider
        self.origin = origin
        self.key_is_callable = key_is_callable
        self.key_fingerprint = key_fingerprint
        #: For a client whose SDK refreshes its key (no fixed key to fingerprint): the fingerprint of the credential
        #: its last attempt sent (a token identity's is the same across refreshes), in the recorder's scheme.
        self.sent_fingerprint: str | None = None
        self.scheme = scheme
        self.organization = organization
        self.project = project
        self.base_url = base_url
        self.ref: Callable[[], Any] | None = None
        #: What every span of this client carries (:mod:`.client_view`); None until first used.
        self.view: ClientView | None = None

    def renew_if_forked(self) -> None:
        """In a forked child, the first use renames the client into the child's process tag."""
        if self.generation != PROCESS.generation:
            self.generation = PROCESS.generation
            self.client_id = f"{PROCESS.tag}-{self.serial}"
            if self.parent is not None:
                self.parent.renew_if_forked()
                self.parent_id = self.parent.client_id
            self.view = None

    def set_parent(self, parent: ClientInfo, copy_changed: tuple[str, ...] = ()) -> None:
        self.parent = parent
        self.parent_id = parent.client_id
        self.copy_changed = copy_changed
        self.copied_at = time.time()
        self.view = None

    def rebase_key(self, client: Any, fingerprint_of: KeyFingerprint, scheme: str) -> None:
        """Take the client's key as it is now as its construction key, in fingerprint scheme ``scheme`` (an
        instrumentation with another fingerprint secret meets a client described by an earlier one)."""
        self.key_fingerprint = fingerprint_of(getattr(client, "api_key", None))
        self.scheme = scheme


def mutated_fields(info: ClientInfo, client: Any, sent_fingerprint: str | None,
                   fingerprint_of: KeyFingerprint) -> list[str]:
    """Which of api_key, organization, project, base_url differ now from construction (pure).

    ``sent_fingerprint`` is the fingerprint of the credential header the attempt carried (None when it
    carried none, or no attempt was seen): the key is judged from it when the client was built with a
    string key, else from the client's attribute.
    """
    # Identity first: an unchanged client returns the very objects it was built with, and comparing
    # two httpx URL objects with == costs more than the rest of this check together.
    changed = []
    if not info.key_is_callable:
        built = info.key_fingerprint
        if built is not None and sent_fingerprint is not None:
            if sent_fingerprint != built:
                changed.append("api_key")
        elif fingerprint_of(getattr(client, "api_key", None)) != built:
            changed.append("api_key")
    org = getattr(client, "organization", None)
    if org is not info.organization and org != info.organization:
        changed.append("organization")
    project = getattr(client, "project", None)
    if project is not info.project and project != info.project:
        changed.append("project")
    base_url = getattr(client, "base_url", None)
    if base_url is not info.base_url and base_url != info.base_url:
        changed.append("base_url")
    return changed


def copy_changes(child: Any, parent: Any) -> tuple[str, ...]:
    """Which of api_key, organization, project, base_url a ``copy()``/``with_options()`` client holds
    different from its parent, judged at copy time (pure; compares the live values, keeps none)."""
    changed = []
    child_key, parent_key = key_source(child), key_source(parent)
    if child_key is not parent_key and child_key != parent_key:
        changed.append("api_key")
    for name in ("organization", "project", "base_url"):
        a, b = getattr(child, name, None), getattr(parent, name, None)
        if a is not b and a != b:
            changed.append(name)
    return tuple(changed)


_registries: weakref.WeakSet[ClientRegistry] = weakref.WeakSet()


class ClientRegistry:
    """Client object -> :class:`ClientInfo`. Thread-safe and fork-safe.

    The info rides on the client (see the module docstring); the index below is only for objects that
    cannot carry an attribute, weak and bounded by ``max_clients``.
    """

    def __init__(self, max_clients: int = 10_000, capture_origin: bool = True,
                 fingerprint_of: KeyFingerprint | None = None, scheme: str = "") -> None:
        self.max_clients = max(1, int(max_clients))
        self.capture_origin = capture_origin
        #: Key -> its fingerprint in this instrumentation's scheme (None for a key that is not a string).
        self.fingerprint_of: KeyFingerprint = fingerprint_of or _plain_fingerprint
        self.scheme = scheme
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

    def set_parent(self, child: Any, parent: Any) -> None:
        """``child`` was made by ``parent.copy()``/``with_options()``: note the parent and what differs."""
        child_info = self.get_or_register(child)
        parent_info = self.get_or_register(parent)
        if child_info is not parent_info:
            child_info.set_parent(parent_info, copy_changes(child, parent))

    def register(
        self, client: Any, origin: str | None = None, before_instrumentation: bool = False, origin_depth: int = 3
    ) -> ClientInfo:
        """Snapshot ``client`` as constructed now. ``origin=None`` walks the stack for user code."""
        if origin is None:
            origin = user_code_origin(origin_depth) if self.capture_origin else ""
        if before_instrumentation and not origin:
            origin = "<created before instrumentation>"
        key = getattr(client, "api_key", None)
        key_is_callable = sdk_refreshes_key(client)
        name = type(client).__name__
        info = ClientInfo(
            serial=next(_serials),
            is_async=name.startswith("Async"),
            provider=A.PROVIDER_AZURE if "Azure" in name else A.PROVIDER_OPENAI,
            origin=origin,
            key_fingerprint=None if key_is_callable else self.fingerprint_of(key),
            key_is_callable=key_is_callable,
            organization=getattr(client, "organization", None),
            project=getattr(client, "project", None),
            base_url=getattr(client, "base_url", None),
            scheme=self.scheme,
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


def _plain_fingerprint(key: Any) -> str | None:
    """The default scheme: the plain (no secret) fingerprint of a string key."""
    return describe(key).fingerprint if isinstance(key, str) else None


def _after_fork() -> None:
    for registry in list(_registries):
        registry._after_fork()


after_fork_in_child(_after_fork)
