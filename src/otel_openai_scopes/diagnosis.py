"""Live diagnosis of each missing-scope error: platform flapping, a mutated client, or a scope never granted.

A missing-scope 401 means the server accepted a credential and found it lacking a scope. What the
process has seen tells the causes apart, in this order:

* ``client_mutated``: the client that sent it no longer holds the api_key, organization, project
  or base_url it was built with (the corrupted-shared-client case);
* ``token_lacks_scope``: the credential is a token whose own claims list the scopes it was granted,
  and this scope is not among them: certain from the first failure (re-authorise, requesting it);
* ``scope_flapping``: the same credential tuple (key fingerprint, organization, project, host)
  succeeded for this scope, or on this very endpoint, within the look-back window, from any client;
* ``context_mismatch``: the same key (fingerprint, host) succeeded for this scope, or on this endpoint,
  within the window with another organization or project, and this tuple has not: the key holds the
  scope in the other context (a pod sending the wrong project), certain from the first failure;
* ``never_granted``: the tuple has not succeeded for this scope within the window and has failed
  at least ``min_failures`` times (a restricted key, or the owner's role lacks the permission);
* ``unknown``: not enough evidence yet.

A token whose claims include the scope and still fails gets the verdict its history gives: its grant rules
out ``token_lacks_scope`` and is on the span (``openai.scope.granted``) beside the missing scope, but it is no
proof of a platform fault (the subject's role in the organization or project may lack the permission, which
the server checks on top of the token's scopes), and a platform-side verdict needs a success of the same tuple.

Memory is bounded (LRU over tuples x scopes, capped per-scope sets) and each update is O(1)
amortised under one short lock, so it is safe from threads and asyncio tasks alike.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from . import attributes as A
from . import verdicts as V
from .forking import after_fork_in_child
from .redact import mask_value

CredentialTuple = tuple[str, str, str, str]  # fingerprint, organization, project, host
#: Where a key (fingerprint, host) last passed a scope or endpoint: (time, organization, project, client id).
_Context = tuple[float, str, str, str]


@dataclass
class _ScopeState:
    last_success: float = 0.0
    last_success_iso: str = ""  # formatted when recorded (at most once a second), not on every failure
    last_success_client: str = ""
    failures: int = 0  # failures since the last success
    label: str = ""


@dataclass
class _FailingSet:
    """Clients and keys that failed for one scope, oldest first, pruned to the window."""

    clients: OrderedDict[str, float] = field(default_factory=OrderedDict)
    keys: OrderedDict[str, float] = field(default_factory=OrderedDict)


class Verdict(NamedTuple):
    """The label and its evidence (a NamedTuple: built on every scope error, so it must be cheap)."""

    label: str
    previous: str
    last_success: float
    last_success_iso: str
    last_success_client: str
    failing_clients: int
    failing_keys: int
    failures: int
    #: context_mismatch: the organization and project (as sent) with which the key passed; "" when not sent.
    other_organization: str = ""
    other_project: str = ""

    @property
    def changed(self) -> bool:
        return self.label != self.previous

    def span_attributes(self, client_id: str, *secrets: str | None) -> dict[str, object]:
        """The verdict's span attributes; ``secrets`` (the credential sent) are masked in the values as sent."""
        attrs: dict[str, object] = {
            A.DIAGNOSIS: self.label,
            A.DIAGNOSIS_FAILING_CLIENTS: self.failing_clients,
            A.DIAGNOSIS_FAILING_KEYS: self.failing_keys,
        }
        if self.last_success:
            attrs[A.DIAGNOSIS_LAST_SUCCESS_TIME] = self.last_success_iso
            attrs[A.DIAGNOSIS_LAST_SUCCESS_CLIENT] = self.last_success_client
            attrs[A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT] = self.last_success_client == client_id
        if self.other_organization:
            attrs[A.DIAGNOSIS_LAST_SUCCESS_ORGANIZATION] = mask_value(self.other_organization, *secrets) or "***"
        if self.other_project:
            attrs[A.DIAGNOSIS_LAST_SUCCESS_PROJECT] = mask_value(self.other_project, *secrets) or "***"
        return attrs

    def sentence(self, scope: str, granted: bool | None = None, secrets: tuple[str, ...] = ()) -> str:
        """What the verdict means for ``scope`` and what to do, for the diagnosis log line. ``granted``: whether the
        credential's own claims grant ``scope`` (None: they do not say); ``secrets`` are masked in the values as
        sent (organization and project)."""
        if self.label == V.TOKEN_LACKS_SCOPE:
            return (f"the token's own claims do not grant {scope}: it was issued without it; re-authorise, "
                    f"requesting {scope}")
        if self.label == V.CONTEXT_MISMATCH:
            other = ", ".join(f"{name} {mask_value(value, *secrets) or '***'}" for name, value in (
                ("organization", self.other_organization), ("project", self.other_project)) if value)
            return (f"the same key passed {scope} with {other or 'no organization or project header'} at "
                    f"{self.last_success_iso} (client {self.last_success_client}): "
                    f"{V.meaning(self.label).action}")
        action = V.meaning(self.label).action
        if granted and self.label in (V.NEVER_GRANTED, V.UNKNOWN):
            return (f"the token's own claims grant {scope}, the server says it is missing: the role of the token's "
                    f"subject in this organization/project lacks it, or the platform disagrees with its own token")
        return action


def iso_time(ts: float) -> str:
    """``2026-12-06T07:51:22.123Z`` (UTC, milliseconds), as on spans."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class Diagnosis:
    """Per-process evidence of which credential tuples succeeded and failed for which scopes."""

    MAX_PER_SCOPE = 256
    MAX_SCOPES = 256

    def __init__(self, window: float = 900.0, max_entries: int = 4096, min_failures: int = 3,
                 clock: Callable[[], float] = time.time) -> None:
        self.window = float(window)
        self.max_entries = max(16, int(max_entries))
        self.min_failures = max(1, int(min_failures))
        self.clock = clock
        self._lock = threading.Lock()
        self._scopes: OrderedDict[tuple[CredentialTuple, str], _ScopeState] = OrderedDict()
        self._failing: OrderedDict[str, _FailingSet] = OrderedDict()
        self._recent: dict[tuple[CredentialTuple, str, str], float] = {}
        #: (fingerprint, host, scope or endpoint) -> the context of its latest success (LRU, max_entries).
        self._contexts: OrderedDict[tuple[str, str, str], _Context] = OrderedDict()
        _instances.add(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._scopes)

    def _entry(self, key: tuple[CredentialTuple, str]) -> _ScopeState:
        state = self._scopes.get(key)
        if state is None:
            state = self._scopes[key] = _ScopeState()
            if len(self._scopes) > self.max_entries:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(key)
        return state

    #: Successes of one (credential, endpoint) closer together than this are recorded once: the window is
    #: minutes long, so a second of staleness changes no verdict, and the common path becomes one dict lookup.
    SUCCESS_RESOLUTION = 1.0

    def observe_success(self, cred: CredentialTuple, scopes: tuple[str, ...], endpoint: str, client_id: str) -> None:
        """A call on ``endpoint`` (``"GET /threads/{thread_id}/runs"``) succeeded with ``cred``."""
        now = self.clock()
        recent = self._recent
        key = (cred, endpoint, client_id)
        last = recent.get(key)
        if last is not None and now - last < self.SUCCESS_RESOLUTION:
            return
        if len(recent) >= self.max_entries:
            recent.clear()
        recent[key] = now
        with self._lock:
            iso = iso_time(now)
            fp, org, project, host = cred
            contexts = self._contexts
            for name in (*scopes, endpoint):
                state = self._entry((cred, name))
                state.last_success = now
                state.last_success_iso = iso
                state.last_success_client = client_id
                state.failures = 0
                where = (fp, host, name)
                contexts[where] = (now, org, project, client_id)
                contexts.move_to_end(where)
            while len(contexts) > self.max_entries:
                contexts.popitem(last=False)

    def last_success(self, cred: CredentialTuple, scope: str, endpoint: str) -> float:
        """When ``cred`` last passed ``scope`` or ``endpoint`` within the window (0.0: not within it). Read-only."""
        horizon = self.clock() - self.window
        with self._lock:
            found = max((s.last_success for s in (self._scopes.get((cred, scope)), self._scopes.get((cred, endpoint)))
                         if s is not None), default=0.0)
        return found if found >= horizon else 0.0

    def _other_context(self, cred: CredentialTuple, scope: str, endpoint: str, horizon: float) -> _Context | None:
        """The latest success of the same key in another organization/project within the window (caller locks)."""
        fp, org, project, host = cred
        found: _Context | None = None
        for name in (scope, endpoint):
            ctx = self._contexts.get((fp, host, name))
            if ctx is not None and ctx[0] >= horizon and (ctx[1], ctx[2]) != (org, project) and \
                    (found is None or ctx[0] > found[0]):
                found = ctx
        return found

    def observe_scope_error(
        self,
        cred: CredentialTuple,
        scope: str,
        endpoint: str,
        client_id: str,
        mutated: bool,
        lacks: bool = False,
    ) -> Verdict:
        """A scope error of ``cred`` for ``scope`` on ``endpoint``; ``lacks``: the credential's own claims list
        its granted scopes and ``scope`` is not among them."""
        now = self.clock()
        horizon = now - self.window
        if self._recent:
            self._recent.clear()  # the next success is recorded in full: it resets the failure count
        with self._lock:
            state = self._entry((cred, scope))
            state.failures += 1
            by_endpoint = self._scopes.get((cred, endpoint))
            evidence = state
            if by_endpoint is not None and by_endpoint.last_success > state.last_success:
                evidence = by_endpoint
            last_success = evidence.last_success

            failing = self._failing.get(scope)
            if failing is None:
                failing = self._failing[scope] = _FailingSet()
                if len(self._failing) > self.MAX_SCOPES:
                    self._failing.popitem(last=False)
            for members, member in ((failing.clients, client_id), (failing.keys, cred[0])):
                members[member] = now
                members.move_to_end(member)
                # Oldest first: drop members older than the window or past the bound. Each member is
                # added and dropped once, so this is O(1) amortised.
                while members and (next(iter(members.values())) < horizon or len(members) > self.MAX_PER_SCOPE):
                    members.popitem(last=False)

            other = None
            if mutated:
                label = V.CLIENT_MUTATED
            elif lacks:
                label = V.TOKEN_LACKS_SCOPE
            elif last_success and last_success >= horizon:
                label = V.SCOPE_FLAPPING
            elif (other := self._other_context(cred, scope, endpoint, horizon)) is not None:
                label = V.CONTEXT_MISMATCH
            elif state.failures >= self.min_failures:
                label = V.NEVER_GRANTED
            else:
                label = V.UNKNOWN
            previous = state.label
            state.label = label
            if other is not None:  # the evidence is the other context's success, not this tuple's
                return Verdict(label, previous, other[0], iso_time(other[0]), other[3], len(failing.clients),
                               len(failing.keys), state.failures, other[1], other[2])
            return Verdict(
                label=label,
                previous=previous,
                last_success=last_success,
                last_success_iso=evidence.last_success_iso,
                last_success_client=evidence.last_success_client,
                failing_clients=len(failing.clients),
                failing_keys=len(failing.keys),
                failures=state.failures,
            )


_instances: weakref.WeakSet[Diagnosis] = weakref.WeakSet()


def _after_fork() -> None:
    for diagnosis in list(_instances):
        diagnosis._after_fork()


after_fork_in_child(_after_fork)
