"""API credential to a safe fingerprint, kind and dashboard-style hint. Never the key itself.

The fingerprint is a truncated SHA-256 over a domain-separated key, stable across processes and
machines so a team can search its backend for one key (``otel-openai-scopes fingerprint`` prints the
same value). With a secret it becomes a truncated HMAC-SHA-256, which cannot be recomputed by
anyone who does not hold the secret.

The hint shows the key's type prefix and at most its last 4 characters (``sk-proj-...WXYZ``), as
the OpenAI dashboard does; keys shorter than 20 characters show no tail at all.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

FINGERPRINT_HEX_CHARS = 16
HINT_TAIL_CHARS = 4
HINT_MIN_KEY_CHARS = 20
_DOMAIN = b"otel-openai-scopes/v1\x00"

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


NO_CREDENTIAL = Credential(fingerprint="", kind="none", hint="")


def key_kind(key: str) -> str:
    for prefix, kind in _KINDS:
        if key.startswith(prefix):
            return kind
    if key.startswith("eyJ") and key.count(".") == 2:  # a JWT: workload-identity / OAuth access token
        return "workload_identity"
    return "other"


def key_prefix(key: str) -> str:
    for prefix, _ in _KINDS:
        if key.startswith(prefix):
            return prefix
    if key.startswith("eyJ"):
        return "eyJ"
    return ""


def fingerprint(key: str, secret: bytes | None = None) -> str:
    data = _DOMAIN + key.encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, data, hashlib.sha256).hexdigest() if secret else hashlib.sha256(data).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


def hint(key: str) -> str:
    prefix = key_prefix(key)
    if len(key) <= len(prefix):  # nothing but a type prefix: the hint must not repeat the whole value
        return "..."
    if len(key) < HINT_MIN_KEY_CHARS:
        return prefix + "..."
    return prefix + "..." + key[-HINT_TAIL_CHARS:]


def describe(key: str | None, secret: bytes | None = None) -> Credential:
    """Fingerprint, kind and hint of a raw credential (``None`` or empty gives kind ``none``)."""
    if not key:
        return NO_CREDENTIAL
    return Credential(fingerprint(key, secret), key_kind(key), hint(key))


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
