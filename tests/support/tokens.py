"""Unsigned JWTs for tests: random claim values, so that any leaked piece is unmistakable."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from .keys import ALPHABET as _ALPHABET


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rand(n: int = 16, prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def make_jwt(claims: dict[str, Any], header: dict[str, Any] | None = None, signature: str | None = None) -> str:
    """A compact JWS with these claims and a random signature (never verified by the instrumentation)."""
    head = header if header is not None else {"alg": "RS256", "typ": "JWT", "kid": rand(12)}
    return ".".join((b64url(json.dumps(head).encode()), b64url(json.dumps(claims).encode()),
                     signature if signature is not None else rand(86)))


def identity(**extra: Any) -> dict[str, Any]:
    """Identity claims of one signed-in user of one app (random values), plus ``extra``."""
    claims: dict[str, Any] = {"iss": "https://auth." + rand(10).lower() + ".example", "sub": rand(20, "user-"),
                              "azp": rand(24, "app_"), "email": rand(10).lower() + "@" + rand(8).lower() + ".example",
                              "name": rand(6) + " " + rand(9)}
    claims.update(extra)
    return claims


def refresh(claims: dict[str, Any], n: int) -> str:
    """The ``n``-th refresh of a token: same identity, new issue/expiry times, token id and signature."""
    return make_jwt({**claims, "iat": 1_800_000_000 + 60 * n, "exp": 1_800_003_600 + 60 * n, "jti": rand(22)})


def claim_values(claims: Any) -> list[str]:
    """Every string value in the claims (nested too), the scope claims excepted."""
    out: list[str] = []
    stack = [claims]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            stack.extend(v for k, v in value.items() if k not in ("scp", "scope"))
        elif isinstance(value, list):
            stack.extend(value)
    return out


def segment_pieces(token: str, n: int = 12) -> set[str]:
    """Every ``n``-character piece of every segment of ``token`` (what must never be exported)."""
    return {seg[i:i + n] for seg in token.split(".") for i in range(len(seg) - n + 1)}
