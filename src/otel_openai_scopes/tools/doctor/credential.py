"""What a credential says about itself, read locally before any request: for a JWT, the scopes its own claims
grant against the scopes each probed request needs (from the scope map).

Only what the runtime derives is shown: fingerprint, hint and kind (:func:`~otel_openai_scopes.fingerprint.describe`),
the NAMES of the claims the identity came from, and the granted scopes (scope grammar, validated and bounded by
:mod:`otel_openai_scopes.tokens`). Never the token, nor any claim value (issuer, subject, client id, e-mail, name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...fingerprint import Credential
from ...tokens import looks_like_jwt, read_claims
from .probes import Planned

#: How a probed request stands against a token's own grant.
GRANTED = "granted"
LACKS = "lacks"
NOT_LISTED = "not listed"
UNLISTED = "cannot tell"


@dataclass(frozen=True)
class TokenReading:
    """The parts of a JWT's claims doctor may show."""

    identity_claims: tuple[str, ...]  # which identity claims are present ("issuer", "subject", "client id")
    scopes_listed: bool
    complete: bool
    granted: tuple[str, ...]


def read_token(key: str, cred: Credential) -> TokenReading | None:
    """The reading of a JWT credential, as the runtime uses it (None for keys). A token whose claims are unreadable
    or name no subject or client is described whole, as a key is: its grant is not used either."""
    if not looks_like_jwt(key):
        return None
    claims = read_claims(key)
    if claims is None or claims.identity is None:
        return TokenReading((), False, False, ())
    present = tuple(name for name, value in (("issuer", claims.issuer), ("subject", claims.subject),
                                             ("client id", claims.client_id)) if value)
    return TokenReading(present, claims.scopes_listed, cred.grant_complete, cred.granted)


def token_lines(reading: TokenReading) -> list[tuple[str, str]]:
    """(label, text) lines: where the fingerprint came from and what the token grants (claim names, no values)."""
    if not reading.identity_claims:
        return [("from", "the whole token (its claims are unreadable or name no subject or client)")]
    lines = [("from", f"identity claims: {', '.join(reading.identity_claims)} (the same across refreshes)")]
    if reading.scopes_listed:
        scopes = " ".join(reading.granted) or "(no scope in scope grammar)"
        lines.append(("granted", scopes + ("" if reading.complete else " (incomplete: more not shown)")))
    return lines


@dataclass(frozen=True)
class Coverage:
    """One probed request against a token's own grant."""

    family: str
    required: tuple[str, ...]
    standing: str  # GRANTED, LACKS, NOT_LISTED or UNLISTED
    scopes: tuple[str, ...] = ()  # the required scopes the grant lacks (LACKS) or does not list (NOT_LISTED)


def coverage(reading: TokenReading, cred: Credential, planned: Sequence[Planned]) -> list[Coverage]:
    """What each probe needs, against what the token's claims grant (certain only when the grant is complete)."""
    out = []
    for p in planned:
        required = p.scopes
        if not reading.scopes_listed:
            out.append(Coverage(p.probe.family, required, UNLISTED))
            continue
        lacking = tuple(s for s in required if cred.lacks(s))
        unlisted = tuple(s for s in required if s not in cred.granted and s not in lacking)
        if lacking:
            out.append(Coverage(p.probe.family, required, LACKS, lacking))
        elif unlisted:
            out.append(Coverage(p.probe.family, required, NOT_LISTED, unlisted))
        else:
            out.append(Coverage(p.probe.family, required, GRANTED))
    return out
