"""The fake server's control API: ``POST /__fake__/<action>`` with a JSON object, for scripts and demos.

Each action is one table row with the line ``fake-server --help`` prints for it, so the help cannot drift from
what the server does. Every action answers with the request counts; a bad request is a 400 saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .identity import Identity
from .state import ALL, FakeState

PREFIX = "/__fake__/"


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[FakeState, dict[str, Any]], None]
    help: str


def _who(data: dict[str, Any]) -> str | Identity:
    """``"key": K``, or ``"identity": {"subject": S, "issuer": I, "client_id": C}`` (a token's identity)."""
    if "identity" in data:
        who = data["identity"]
        if not isinstance(who, dict):
            raise ValueError("identity must be an object with subject, issuer, client_id")
        return Identity(str(who["subject"]), **{k: str(who[k]) for k in ("issuer", "client_id") if k in who})
    return str(data["key"])


def _grant(fake: FakeState, data: dict[str, Any]) -> None:
    who = _who(data)
    name = who.name if isinstance(who, Identity) else who
    fake.grant(name, data.get("scopes", [ALL]), data.get("organization"), data.get("project"))


def _lose_scope(fake: FakeState, data: dict[str, Any]) -> None:
    fake.lose_scope(_who(data), str(data["scope"]), data.get("start"), float(data.get("duration", 3600.0)),
                    float(data.get("probability", 1.0)))


def _deny(fake: FakeState, data: dict[str, Any]) -> None:
    fake.deny(_who(data), str(data["project"]), [str(s) for s in data["scopes"]])


def _accept_any_key(fake: FakeState, data: dict[str, Any]) -> None:
    fake.accept_any_key = bool(data.get("enabled", True))


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("grant", _grant, '{"key": K, "scopes": ["api.threads.read", ...], "organization": O, "project": P} '
                            '(scopes default to every scope; "identity": {"subject": S, "issuer": I, "client_id": C} '
                            "in place of the key grants a JWT identity: its tokens hold the scopes their claims list "
                            "and this grant both have)"),
    Action("lose_scope", _lose_scope, '{"key": K or "*", "scope": S, "start": EPOCH_SECONDS, "duration": SECONDS, '
                                      '"probability": 0..1} (K loses S on that fraction of its calls in that window: '
                                      'script a platform flap; "identity" in place of the key, as for grant)'),
    Action("deny", _deny, '{"key": K, "project": P, "scopes": [...]} (K lacks those scopes when its client sends '
                          "OpenAI-Project: P, and holds them elsewhere: a wrong project)"),
    Action("reset", lambda fake, data: fake.reset(), "{} (forget windows, scripted answers and counts)"),
    Action("accept_any_key", _accept_any_key, '{"enabled": true} (every unknown key gets every scope)'),
    Action("stats", lambda fake, data: None, "{} (counts only)"),
)}


def help_text() -> str:
    """The control API as ``fake-server --help`` shows it (one paragraph per action)."""
    return "\n\n".join(f"  {PREFIX}{a.name} {a.help}" for a in ACTIONS.values())


def handle(fake: FakeState, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Run one control request: (status, JSON answer)."""
    action = ACTIONS.get(path[len(PREFIX):])
    if action is None:
        return 404, {"error": "unknown control path"}
    try:
        data = json.loads(body) if body else {}
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        action.run(fake, data)
    except (ValueError, KeyError, TypeError) as exc:  # a bad control request: say so, no traceback
        missing = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        return 400, {"error": f"bad control request for {path}: {missing}"}
    return 200, fake.summary()
