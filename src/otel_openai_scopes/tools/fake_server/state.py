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
from typing import Any, Union

from ...endpoints import Endpoint
from ...fingerprint import fingerprint
from ...scope_map import build_matcher
from .identity import DEFAULT_TTL, Identity, Principal, exchange_request, mint

#: Every scope ("All" permissions), every key, every method.
ALL = "*"
DEFAULT_ORGANIZATION = "org-fake000000000000000000"
DEFAULT_PROJECT = "proj_fake0000000000000000000"


@dataclass
class KeyGrant:
    """What one fake key (or token identity) may do. ``scopes`` of ``{"*"}`` means every scope ("All"
    permissions). ``aliases``: other names of the credential (a token's identity), matched by scope-loss windows."""

    scopes: set[str] = field(default_factory=lambda: {ALL})
    organization: str = DEFAULT_ORGANIZATION
    project: str = DEFAULT_PROJECT
    aliases: tuple[str, ...] = ()

    def allows(self, scope: str) -> bool:
        return ALL in self.scopes or scope in self.scopes

    def narrowed(self, principal: Principal) -> KeyGrant:
        """This grant as ``principal`` holds it: a token only has the scopes its claims list, too."""
        scopes = set(self.scopes)
        if principal.token_scopes is not None:
            scopes = set(principal.token_scopes) if ALL in scopes else scopes & principal.token_scopes
        return KeyGrant(scopes, self.organization, self.project, principal.names[1:])


Who = Union[str, Identity]


def _name(who: Who) -> str:
    return who.name if isinstance(who, Identity) else who


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
        #: (key or identity name, project) -> scopes it lacks when its client sends that ``OpenAI-Project``.
        self.denied: dict[tuple[str, str], set[str]] = {}
        #: Lifetime, in seconds, of the tokens the token exchange mints.
        self.token_ttl = DEFAULT_TTL
        self.exchanges = 0
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

    def grant_identity(self, identity: Identity, scopes: Iterable[str] = (ALL,), organization: str | None = None,
                       project: str | None = None) -> KeyGrant:
        """What tokens of ``identity`` may do (each still limited to the scopes its own claims list)."""
        return self.grant(identity.name, scopes, organization, project)

    def deny(self, key: Who, project: str, scopes: Iterable[str]) -> None:
        """``key`` lacks ``scopes`` when its client sends ``OpenAI-Project: project`` (it holds them elsewhere)."""
        with self._lock:
            self.denied[(_name(key), project)] = set(scopes)

    def lose_scope(self, key: Who, scope: str, start: float | None = None, duration: float = 3600.0,
                   probability: float = 1.0) -> ScopeWindow:
        """``key`` (a key, an identity, or ``"*"``) loses ``scope`` on a fraction of its calls in a window."""
        start = time.time() if start is None else start
        window = ScopeWindow(_name(key), scope, start, start + duration, probability)
        with self._lock:
            self.windows.append(window)
        return window

    def end_window(self, window: ScopeWindow) -> None:
        """End a scope-loss window now (the platform recovers)."""
        with self._lock:
            window.end = min(window.end, time.time())

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
            self.exchanges = 0

    # -- decisions -------------------------------------------------------------------------------
    def grant_for(self, principal: Principal) -> KeyGrant | None:
        """The grant of a credential: its key's or its identity's; a token listing scopes needs none (it holds
        what it lists); every scope when unknown keys are accepted; else None (401)."""
        with self._lock:
            grant = next((self.keys[n] for n in principal.names if n in self.keys), None)
        if grant is None and (principal.token_scopes is not None or (self.accept_any_key and principal.credential)):
            grant = _ANY_KEY
        return grant.narrowed(principal) if grant is not None else None

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
                if (w.key in (key, ALL) or w.key in grant.aliases) and w.start <= now < w.end \
                        and w.scope in endpoint.scopes \
                        and w.scope not in missing and self._rng.random() < w.probability:
                    missing.append(w.scope)
        return missing

    def denied_in(self, key: str, grant: KeyGrant, project: str, endpoint: Endpoint) -> list[str]:
        """Scopes ``endpoint`` needs that the credential lacks in ``project`` (see :meth:`deny`)."""
        with self._lock:
            denied = set().union(*(self.denied.get((n, project), set()) for n in (key, *grant.aliases)))
        return [s for s in endpoint.scopes if s in denied]

    def exchange(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """The token exchange: a short-lived JWT for the workload's identity, listing its granted scopes."""
        who, error = exchange_request(body)
        if who is None:
            return 400, {"error": error, "error_description": "not a token-exchange request the fake understands"}
        with self._lock:
            grant = self.keys.get(who.name)
            if grant is None and not self.accept_any_key:
                return 401, {"error": "invalid_grant", "error_description": "no grant for this service account"}
            self.exchanges += 1
        scopes = None if grant is None or ALL in grant.scopes else tuple(sorted(grant.scopes))
        token = mint(who, scopes, self.token_ttl, gty="urn:ietf:params:oauth:grant-type:token-exchange")
        return 200, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer",
                     "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    def mint(self, identity: Identity, scopes: Iterable[str] | None = None, ttl: float | None = None) -> str:
        """A token for ``identity`` listing ``scopes`` (None: no scope claim), as the exchange would mint it."""
        return mint(identity, None if scopes is None else tuple(scopes), self.token_ttl if ttl is None else ttl)

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
