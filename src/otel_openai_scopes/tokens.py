"""What a JWT credential says about itself: its identity, its client and the scopes it was granted.

Read, never verified: the instrumentation holds no signing keys and needs none (the server verifies), and a
forged token only misdescribes itself. Total and bounded: any input (any length, any bytes, hostile JSON)
gives a :class:`Claims` or ``None``, never an exception; the token, the payload, its nesting, each claim and
the granted-scope list are bounded. Claim values are personal data (``sub``, ``email``, ``name``): they stay
in this process (to derive a fingerprint, and as masking secrets), and only derived values leave it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from .scope_names import is_scope_name

#: Longer credentials are not read as tokens (real access tokens are a few KB at most).
MAX_TOKEN_CHARS: Final = 16 * 1024
#: Longest payload segment decoded (base64url characters).
MAX_PAYLOAD_CHARS: Final = 12 * 1024
#: Deepest nesting of objects and arrays accepted in the payload.
MAX_DEPTH: Final = 8
#: Longest identity claim (issuer, subject, client id) used; a longer one counts as absent.
MAX_CLAIM_CHARS: Final = 512
#: Granted scopes kept; a grant listing more is kept in part and marked incomplete.
MAX_GRANTED_SCOPES: Final = 64
#: Entries of a scope claim looked at (the rest make the grant incomplete).
MAX_SCOPE_ENTRIES: Final = 256
#: Claim values kept as masking secrets, and the longest kept.
MAX_PRIVATE_VALUES: Final = 16
MAX_PRIVATE_CHARS: Final = 256
#: Shortest claim value kept as a masking secret (shorter runs cannot be told from ordinary words).
MIN_PRIVATE_CHARS: Final = 8

#: Claims naming the OAuth client (app) the token was issued to, by issuer family.
CLIENT_ID_CLAIMS: Final = ("azp", "client_id", "cid", "appid")
#: Claims listing the granted scopes: ``scp`` (a list, or a space-separated string) and ``scope`` (RFC 8693/9068).
SCOPE_CLAIMS: Final = ("scp", "scope")
#: Claim names that tell a workload-identity token exchange (RFC 8693's ``act``; identity-provider and
#: service-account ids), looked for at the top level and one object down (issuers namespace their claims).
_WORKLOAD_KEYS: Final = frozenset({"act", "identity_provider_id", "service_account_id", "workload_identity"})
#: Claims that name a person or an account: masked first, whatever else the token carries.
_PERSONAL_CLAIMS: Final = ("sub", "email", "name", "preferred_username", "upn", "unique_name", "given_name",
                           "family_name", "nickname", "oid", "iss", *CLIENT_ID_CLAIMS)
_EXCHANGE_GRANT: Final = "token-exchange"
_GRANT_CLAIMS: Final = ("gty", "grant_type")

_MAX_SCOPE_STRING: Final = MAX_SCOPE_ENTRIES * 80
#: Organization and project ids: not personal, and sent as headers anyway (masking them would hide the context
#: the diagnosis names).
_CONTEXT_ID = re.compile(r"(?:org|proj)[-_][A-Za-z0-9]{1,64}")
#: A URL's scheme and host (an issuer, an audience): public names of services, not personal; only what follows
#: (a tenant id, a user's picture id...) is kept as a masking secret.
_URL_HOST = re.compile(r"(?i)https?://[^/?#\s]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)

# Kinds a token's claims tell (values of ``openai.key.kind``).
USER_TOKEN: Final = "user_token"
WORKLOAD_IDENTITY: Final = "workload_identity"
TOKEN: Final = "token"


@dataclass(frozen=True)
class Claims:
    """The parts of a token's claims the instrumentation uses. ``private`` is never exported."""

    # Claim values: kept out of repr, so that no log line of this object can carry them.
    issuer: str = field(default="", repr=False)
    subject: str = field(default="", repr=False)
    client_id: str = field(default="", repr=False)
    #: Granted scopes in scope grammar (bounded), in the token's order.
    scopes: tuple[str, ...] = ()
    #: The token has a scope claim at all.
    scopes_listed: bool = False
    #: Listed, and every entry was looked at (none dropped past a bound, no wildcard).
    scopes_complete: bool = False
    #: The claims tell a workload-identity token exchange.
    exchanged: bool = False
    #: String claim values (identity, names, e-mail...) to mask in any text that is exported.
    private: tuple[str, ...] = field(default=(), repr=False)

    @property
    def identity(self) -> tuple[str, str, str] | None:
        """(issuer, subject, client id): stable across refreshes; None when neither subject nor client is known."""
        if not self.subject and not self.client_id:
            return None
        return (self.issuer, self.subject, self.client_id)

    @property
    def kind(self) -> str:
        if self.exchanged:
            return WORKLOAD_IDENTITY
        if self.scopes_listed and self.client_id:  # an OAuth access token issued to an app for a signed-in user
            return USER_TOKEN
        return TOKEN

    def lacks(self, scope: str) -> bool:
        """Whether the token's own grant certainly does not include ``scope``."""
        return self.scopes_complete and scope not in self.scopes


def looks_like_jwt(value: str) -> bool:
    """A compact JWS shape (``eyJ<header>.<payload>.<signature>``); says nothing about its content."""
    return value.startswith("eyJ") and value.count(".") == 2


def read_claims(token: str) -> Claims | None:
    """The claims of a JWT credential, or None when ``token`` is not a readable JWT. Never raises."""
    try:
        payload = _payload(token)
        return _claims(payload) if payload is not None else None
    except Exception:  # noqa: BLE001 - total by contract: a hostile token must never reach the app
        return None


def _payload(token: str) -> dict[str, Any] | None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not looks_like_jwt(token):
        return None
    header, payload, _signature = token.split(".")
    if len(payload) > MAX_PAYLOAD_CHARS or not _SEGMENT.fullmatch(header) or not _SEGMENT.fullmatch(payload):
        return None
    if not isinstance(_json_object(header), dict):
        return None
    return _json_object(payload)


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not _shallow(text):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _shallow(text: str) -> bool:
    """Nesting at most MAX_DEPTH (checked before parsing, so a hostile payload costs one linear scan)."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return True
    depth = 0
    for ch in _STRING.sub("", text):
        if ch in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "}]":
            depth -= 1
    return True


def _text(value: Any) -> str:
    """An identity claim as text ("" when absent, not a string or number, or too long)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    text = str(value)
    return text if len(text) <= MAX_CLAIM_CHARS else ""


def _claims(payload: dict[str, Any]) -> Claims:
    client_id = next((c for c in (_text(payload.get(name)) for name in CLIENT_ID_CLAIMS) if c), "")
    scopes, listed, complete = _granted(payload)
    return Claims(
        issuer=_text(payload.get("iss")),
        subject=_text(payload.get("sub")),
        client_id=client_id,
        scopes=scopes,
        scopes_listed=listed,
        scopes_complete=complete,
        exchanged=_exchanged(payload),
        private=_private_values(payload),
    )


def _granted(payload: dict[str, Any]) -> tuple[tuple[str, ...], bool, bool]:
    """(scopes in grammar, listed, complete) from ``scp`` and ``scope`` (each a list or a space-separated string)."""
    entries: list[Any] = []
    listed = False
    complete = True
    for name in SCOPE_CLAIMS:
        value = payload.get(name)
        if isinstance(value, str):
            if len(value) > _MAX_SCOPE_STRING:
                complete, value = False, value[:_MAX_SCOPE_STRING].rsplit(" ", 1)[0]
            entries.extend(value.split())
            listed = True
        elif isinstance(value, list):
            entries.extend(value)
            listed = True
    if not listed:
        return (), False, False
    if len(entries) > MAX_SCOPE_ENTRIES:
        complete = False
    found: list[str] = []
    for entry in entries[:MAX_SCOPE_ENTRIES]:
        if not isinstance(entry, str):
            continue
        if "*" in entry:  # a wildcard grant: which scopes it covers is the issuer's business
            complete = False
        elif is_scope_name(entry) and entry not in found:
            if len(found) >= MAX_GRANTED_SCOPES:
                complete = False
                break
            found.append(entry)
    return tuple(found), True, complete


def _exchanged(payload: dict[str, Any]) -> bool:
    for name in _GRANT_CLAIMS:
        value = payload.get(name)
        if isinstance(value, str) and _EXCHANGE_GRANT in value:
            return True
    if _WORKLOAD_KEYS.intersection(payload):
        return True
    return any(isinstance(v, dict) and _WORKLOAD_KEYS.intersection(v) for v in payload.values())


def _private_values(payload: dict[str, Any]) -> tuple[str, ...]:
    """String claim values long enough to mask, the personal ones first, then the rest breadth-first.

    Not masking secrets: the scope claims (exported as the grant), scope names anywhere else (an Auth0
    ``permissions`` list, roles: error messages name the missing scope, and a secret sharing 8 characters with it
    would drop it from the parse), organization and project ids (sent as headers anyway; masking them would hide
    the context the diagnosis names), and a URL's scheme and host (``https://auth.openai.com``: every 8
    characters of it would mask the same in ordinary links of error messages); a URL's path is kept. A personal
    claim is kept even when it looks like a scope name."""
    first = [(payload[name], True) for name in _PERSONAL_CLAIMS if name in payload]
    queue = deque(first + [(v, False) for k, v in payload.items()
                           if k not in SCOPE_CLAIMS and k not in _PERSONAL_CLAIMS])
    out: list[str] = []
    seen = 0
    while queue and len(out) < MAX_PRIVATE_VALUES and seen < 4 * MAX_PRIVATE_VALUES:
        value, personal = queue.popleft()
        seen += 1
        if isinstance(value, str):
            value = _URL_HOST.sub("", value[:MAX_PRIVATE_CHARS], count=1) if value[:4].lower() == "http" else \
                value[:MAX_PRIVATE_CHARS]
            # A personal claim is masked even when it looks like a scope name (a user name "jane.doe").
            if len(value) >= MIN_PRIVATE_CHARS and value not in out and _CONTEXT_ID.fullmatch(value) is None \
                    and (personal or not is_scope_name(value)):
                out.append(value)
        elif isinstance(value, dict):
            queue.extend((v, False) for k, v in value.items() if k not in SCOPE_CLAIMS)
        elif isinstance(value, list):
            queue.extend((v, personal) for v in value[:MAX_PRIVATE_VALUES])
    return tuple(out)
