"""The fake API's state: which credential may do what, scheduled scope losses, scripted answers and counts.

Every handler thread goes through these methods (one lock, never taken from outside), so a test can change grants
and windows while an app is calling the server.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...endpoints import Endpoint
from ...fingerprint import fingerprint
from ...scope_map import build_matcher

#: Every scope ("All" permissions), every key, every method.
ALL = "*"
DEFAULT_ORGANIZATION = "org-fake000000000000000000"
DEFAULT_PROJECT = "proj_fake0000000000000000000"


@dataclass
class KeyGrant:
    """What one fake key may do. ``scopes`` of ``{"*"}`` means every scope ("All" permissions)."""

    scopes: set[str] = field(default_factory=lambda: {ALL})
    organization: str = DEFAULT_ORGANIZATION
    project: str = DEFAULT_PROJECT

    def allows(self, scope: str) -> bool:
        return ALL in self.scopes or scope in self.scopes


@dataclass
class ScopeWindow:
    """Between ``start`` and ``end`` (epoch seconds) ``key`` (or every key for ``"*"``) loses ``scope``
    on a fraction ``probability`` of its requests."""

    key: str
    scope: str
    start: float
    end: float
    probability: float = 1.0


@dataclass
class Scripted:
    """The next ``times`` requests matching ``method`` and ``path`` (regex on the path) get this answer."""

    method: str
    path: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    content_type: str = "application/json"


_ANY_KEY = KeyGrant()


class FakeState:
    """Grants, windows, scripts and counts of one fake server (:class:`.server.FakeOpenAI` adds the HTTP side)."""

    def __init__(self, keys: dict[str, KeyGrant] | None = None, seed: int = 1234,
                 error_code_style: str = "2024") -> None:
        self.keys: dict[str, KeyGrant] = dict(keys or {})
        #: Grant every scope to keys it does not know (load and memory tests with thousands of keys).
        self.accept_any_key = False
        #: Items in every list (paginated with ``after``/``before``/``limit``, see :mod:`.pages`).
        self.list_length = 1
        #: Serve ``/<anything>/v1/...`` as ``/v1/...``, as a gateway with a path prefix (``/gw/<token>/v1``) does;
        #: off, such paths are unknown URLs (404 quoting the path).
        self.gateway_paths = False
        self.windows: list[ScopeWindow] = []
        self.scripts: list[Scripted] = []
        self.matcher = build_matcher()
        #: "2024": scope errors have ``code: null``; "2026": ``code: "missing_scope"``.
        self.error_code_style = error_code_style
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stats: Counter[tuple[str, str, str, int]] = Counter()
        self.created = 0
        self.last_request: dict[str, Any] = {}

    # -- configuration ---------------------------------------------------------------------------
    def grant(self, key: str, scopes: Iterable[str] = (ALL,), organization: str | None = None,
              project: str | None = None) -> KeyGrant:
        grant = KeyGrant(set(scopes))
        if organization:
            grant.organization = organization
        if project:
            grant.project = project
        with self._lock:
            self.keys[key] = grant
        return grant

    def lose_scope(self, key: str, scope: str, start: float | None = None, duration: float = 3600.0,
                   probability: float = 1.0) -> ScopeWindow:
        start = time.time() if start is None else start
        window = ScopeWindow(key, scope, start, start + duration, probability)
        with self._lock:
            self.windows.append(window)
        return window

    def script(self, method: str, path: str, status: int, body: Any = None, times: int = 1,
               headers: dict[str, str] | None = None, content_type: str = "application/json") -> None:
        with self._lock:
            self.scripts.append(Scripted(method.upper(), path, status, body, headers or {}, times, content_type))

    def reset(self) -> None:
        with self._lock:
            self.windows.clear()
            self.scripts.clear()
            self.stats.clear()
            self.created = 0

    # -- decisions -------------------------------------------------------------------------------
    def grant_for(self, key: str) -> KeyGrant | None:
        """The grant of ``key``: its own, every scope when unknown keys are accepted, else None (401)."""
        with self._lock:
            grant = self.keys.get(key)
        if grant is None and self.accept_any_key and key:
            return _ANY_KEY
        return grant

    def take_script(self, method: str, path: str) -> Scripted | None:
        """The scripted answer for this request, if one matches (each answers ``times`` requests)."""
        with self._lock:
            for s in self.scripts:
                if s.method in (method, ALL) and re.search(s.path, path):
                    s.times -= 1
                    if s.times <= 0:
                        self.scripts.remove(s)
                    return s
        return None

    def missing_scopes(self, key: str, grant: KeyGrant, endpoint: Endpoint, now: float | None = None) -> list[str]:
        """Scopes ``endpoint`` needs that ``grant`` (``key``'s) lacks now, scope-loss windows included."""
        now = time.time() if now is None else now
        missing = [s for s in endpoint.scopes if not grant.allows(s)]
        with self._lock:
            for w in self.windows:
                if w.key in (key, ALL) and w.start <= now < w.end and w.scope in endpoint.scopes \
                        and w.scope not in missing and self._rng.random() < w.probability:
                    missing.append(w.scope)
        return missing

    # -- what happened ---------------------------------------------------------------------------
    def note_request(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            self.last_request = {"method": method, "path": target, "body": body, "headers": headers}

    def note_created(self) -> None:
        with self._lock:
            self.created += 1

    def record(self, method: str, template: str, key: str, status: int) -> None:
        fp = fingerprint(key) if key else ""  # hashed outside the lock every handler thread shares
        with self._lock:
            self.stats[(method, template, fp, status)] += 1

    @property
    def requests_seen(self) -> int:
        """API requests served since the last reset (every one is recorded once)."""
        return self.count()

    def count(self, status: int | None = None, template: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, t, k, s), n in self.stats.items()
                       if (status is None or s == status) and (template is None or t == template))

    def summary(self) -> dict[str, Any]:
        """What the control API answers: request counts only."""
        return {"requests": self.requests_seen, "created": self.created,
                "by_status": {str(s): self.count(status=s) for s in (200, 401, 403, 404, 429)}}
