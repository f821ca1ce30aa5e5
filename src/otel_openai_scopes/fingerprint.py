"""API credential to a safe fingerprint, kind and dashboard-style hint. Never the key itself.

The fingerprint is a truncated SHA-256 over a domain-separated key, stable across processes and
machines so a team can search its backend for one key (``otel-openai-scopes fingerprint`` prints the
same value). With a secret it becomes a truncated HMAC-SHA-256, which cannot be recomputed by
anyone who does not hold the secret.

The hint shows the key's type prefix and at most its last 4 characters (``sk-proj-...WXYZ``), as
the OpenAI dashboard does; keys shorter than 20 characters show no tail at all.

A JWT credential (an OAuth access token, a workload-identity token) is refreshed often, so its fingerprint is
that of its identity: issuer, subject and client id read from its claims (:mod:`.tokens`), under a domain tag of
their own, never the token string; one identity keeps one fingerprint across refreshes. A JWT whose claims
cannot be read is fingerprinted whole, as a key is. The hint of any JWT is ``eyJ...#`` and the first 4
characters of its fingerprint: its own last characters are signature (new at every refresh) and its claims are
personal data, so neither is shown.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from .text import valid_text
from .tokens import TOKEN, looks_like_jwt, read_claims

FINGERPRINT_HEX_CHARS = 16
HINT_TAIL_CHARS = 4
HINT_MIN_KEY_CHARS = 20
_DOMAIN = b"otel-openai-scopes/v1\x00"
#: Domain of identity fingerprints: an identity's fingerprint can never equal a key's.
_IDENTITY_DOMAIN = b"otel-openai-scopes/identity/v1\x00"
JWT_PREFIX = "eyJ"
#: Between a JWT hint's prefix and the fingerprint characters it shows (not a tail of the token).
JWT_HINT_MARK = "...#"

# Longest prefix first.
_KINDS = (
    ("sk-proj-", "project"),
    ("sk-svcacct-", "service_account"),
    ("sk-admin-", "admin"),
    ("sk-", "user"),
)


@dataclass(frozen=True)
class Credential:
    fingerprint: str
    kind: str
    hint: str
    #: Scopes the token's own claims grant (scope grammar, bounded); () for keys.
    granted: tuple[str, ...] = ()
    #: The grant is known in full: a scope absent from ``granted`` is certainly not granted.
    grant_complete: bool = False
    #: Claim values to mask in exported text; never exported themselves, and not part of the identity (a token
    #: id changes at every refresh).
    private: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def lacks(self, scope: str) -> bool:
        """Whether the credential's own claims say it was not granted ``scope``."""
        return self.grant_complete and scope not in self.granted


NO_CREDENTIAL = Credential(fingerprint="", kind="none", hint="")


def key_kind(key: str) -> str:
    for prefix, kind in _KINDS:
        if key.startswith(prefix):
            return kind
    if looks_like_jwt(key):  # what kind of token its claims tell: see describe()
        return TOKEN
    return "other"


def key_prefix(key: str) -> str:
    for prefix, _ in _KINDS:
        if key.startswith(prefix):
            return prefix
    if key.startswith(JWT_PREFIX):
        return JWT_PREFIX
    return ""


def _digest(data: bytes, secret: bytes | None) -> str:
    digest = hmac.new(secret, data, hashlib.sha256).hexdigest() if secret else hashlib.sha256(data).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


def fingerprint(key: str, secret: bytes | None = None) -> str:
    return _digest(_DOMAIN + key.encode("utf-8", "surrogatepass"), secret)


def identity_fingerprint(identity: tuple[str, ...], secret: bytes | None = None) -> str:
    """The fingerprint of a token's identity claims (length-prefixed, so no two tuples share an encoding)."""
    return _digest(_IDENTITY_DOMAIN + b"".join(
        b"%d:%s" % (len(part), part.encode("utf-8", "surrogatepass")) for part in identity), secret)


def jwt_hint(fp: str) -> str:
    """``eyJ...#1a2b``: a token's type prefix and the first characters of its fingerprint (never the token's)."""
    return JWT_PREFIX + JWT_HINT_MARK + fp[:HINT_TAIL_CHARS]


def hint(key: str, secret: bytes | None = None) -> str:
    """The hint of a credential (a JWT's shows characters of its fingerprint, hence ``secret``), valid text: a key
    read from an environment that is not UTF-8 may end in a lone surrogate, which no exporter can encode."""
    if key.startswith(JWT_PREFIX):
        return describe(key, secret).hint
    prefix = key_prefix(key)
    if len(key) <= len(prefix):  # nothing but a type prefix: the hint must not repeat the whole value
        return "..."
    if len(key) < HINT_MIN_KEY_CHARS:
        return prefix + "..."
    return valid_text(prefix + "..." + key[-HINT_TAIL_CHARS:])


def describe(key: str | None, secret: bytes | None = None) -> Credential:
    """Fingerprint, kind and hint of a raw credential (``None`` or empty gives kind ``none``)."""
    if not key:
        return NO_CREDENTIAL
    if key.startswith(JWT_PREFIX):
        return _describe_token(key, secret)
    return Credential(fingerprint(key, secret), key_kind(key), hint(key))


def _describe_token(token: str, secret: bytes | None) -> Credential:
    claims = read_claims(token)
    identity = claims.identity if claims is not None else None
    if claims is None or identity is None:  # unreadable: the whole value, as for a key
        fp = fingerprint(token, secret)
        return Credential(fp, key_kind(token), jwt_hint(fp), private=claims.private if claims else ())
    fp = identity_fingerprint(identity, secret)
    return Credential(fp, claims.kind, jwt_hint(fp), claims.scopes, claims.scopes_complete, claims.private)


def credential_from_authorization(value: str | None) -> str | None:
    """The credential inside an Authorization header value (``Bearer <token>``), or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    return value.strip() or None


class CredentialCache:
    """Bounded memo of :func:`describe` per secret: hashing once per distinct key, not per request."""

    def __init__(self, secret: bytes | None = None, maxsize: int = 1024) -> None:
        self.secret = secret
        self.describe = lru_cache(maxsize=maxsize)(self._describe)
        self.from_authorization = lru_cache(maxsize=maxsize)(self._from_authorization)
        #: The credential inside an Authorization header value, memoised per value like the above.
        self.secret_of = lru_cache(maxsize=maxsize)(credential_from_authorization)

    def _describe(self, key: str | None) -> Credential:
        return describe(key, self.secret)

    def _from_authorization(self, header_value: str) -> Credential:
        """Keyed by the whole header value, so the common path skips the ``Bearer`` parse too."""
        return self.describe(credential_from_authorization(header_value))
