"""Who a request is, for the fake API: a key, or a JWT whose claims carry an identity and the scopes it grants;
and the workload-identity token exchange that mints short-lived JWTs for one stable identity.

Like the instrumentation, the fake never verifies a signature: it reads a token's claims with the runtime's own
reader (:func:`otel_openai_scopes.tokens.read_claims`). A token is allowed the scopes its claims list (``scp`` or
``scope``), intersected with any grant made for its identity (issuer, subject, client id); scope-loss windows may
name the identity, so a platform flap follows one workload across refreshes. The tokens it mints are HS256 JWTs
signed with a fixed test secret (nothing checks it: the shape is what matters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ...tokens import Claims, read_claims

#: The issuer of the tokens the fake mints.
ISSUER = "https://auth.fake-openai.test"
#: What ``openai.auth.WorkloadIdentityAuth`` posts (RFC 8693).
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
#: The path of the token exchange (as in the SDK's ``DEFAULT_TOKEN_EXCHANGE_URL``).
TOKEN_PATH = "/oauth/token"
DEFAULT_TTL = 60.0
_SECRET = b"otel-openai-scopes fake server: a test secret, never a real one"


@dataclass(frozen=True)
class Identity:
    """A token's stable identity: the same across refreshes, whatever the token string."""

    subject: str
    issuer: str = ISSUER
    client_id: str = ""

    @property
    def name(self) -> str:
        """How grants and scope-loss windows name this identity (never a key: keys have no spaces)."""
        return f"identity {self.issuer} {self.subject} {self.client_id}".rstrip()

    @classmethod
    def of(cls, claims: Claims) -> Identity | None:
        if claims.identity is None:
            return None
        issuer, subject, client_id = claims.identity
        return cls(subject, issuer, client_id)


@dataclass(frozen=True)
class Principal:
    """The credential of one request and the names it may be granted under (the key, then its identity)."""

    credential: str
    names: tuple[str, ...]
    #: Scopes the token's claims grant; None for keys and for tokens without a scope claim.
    token_scopes: frozenset[str] | None = None

    @classmethod
    def of(cls, credential: str) -> Principal:
        claims = read_claims(credential) if credential.startswith("eyJ") else None
        if claims is None:
            return cls(credential, (credential,))
        identity = Identity.of(claims)
        names = (credential, identity.name) if identity is not None else (credential,)
        return cls(credential, names, frozenset(claims.scopes) if claims.scopes_listed else None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(identity: Identity, scopes: tuple[str, ...] | None = None, ttl: float = DEFAULT_TTL,
         **claims: Any) -> str:
    """A short-lived HS256 JWT for ``identity``: new issue time, expiry and token id at every call (so every
    refresh is a new string), ``scp`` listing ``scopes`` unless None, and any extra ``claims``."""
    now = int(time.time())
    payload: dict[str, Any] = {"iss": identity.issuer, "sub": identity.subject, "iat": now, "exp": now + int(ttl),
                               "jti": uuid.uuid4().hex}
    if identity.client_id:
        payload["client_id"] = identity.client_id
    if scopes is not None:
        payload["scp"] = list(scopes)
    payload.update(claims)
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
        _b64(json.dumps(payload).encode())
    return signing_input + "." + _b64(hmac.new(_SECRET, signing_input.encode(), hashlib.sha256).digest())


def workload_identity(service_account_id: str, identity_provider_id: str) -> Identity:
    """The identity the exchange gives a workload: its service account, issued to its identity provider."""
    return Identity(service_account_id, ISSUER, identity_provider_id)


def exchange_request(body: bytes) -> tuple[Identity | None, str]:
    """The identity a token-exchange request asks for, or None and the OAuth error code that answers it."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, "invalid_request"
    if data.get("grant_type") != TOKEN_EXCHANGE_GRANT_TYPE:
        return None, "unsupported_grant_type"
    subject, account, provider = (data.get(k) for k in ("subject_token", "service_account_id",
                                                         "identity_provider_id"))
    if not all(isinstance(v, str) and v for v in (subject, account, provider)):
        return None, "invalid_request"
    return workload_identity(str(account), str(provider)), ""
