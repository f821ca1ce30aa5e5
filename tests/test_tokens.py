"""Token claims (pure): read without verifying, bounded, total; identity fingerprints and kinds from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_openai_scopes.fingerprint import (
    FINGERPRINT_HEX_CHARS,
    Credential,
    describe,
    fingerprint,
    hint,
    identity_fingerprint,
    key_kind,
)
from otel_openai_scopes.redact import safe_message
from otel_openai_scopes.scope_errors import parse_missing_scopes
from otel_openai_scopes.tokens import (
    MAX_DEPTH,
    MAX_GRANTED_SCOPES,
    MAX_PAYLOAD_CHARS,
    MAX_TOKEN_CHARS,
    Claims,
    looks_like_jwt,
    read_claims,
)
from tests.support.tokens import b64url, claim_values, identity, make_jwt, rand, refresh, segment_pieces

CODEX_SCOPES = "openid profile email offline_access api.connectors.read api.connectors.invoke"


# ---- reading claims ------------------------------------------------------------------------------
def test_identity_client_and_scopes_of_an_oauth_access_token():
    claims = identity(scope=CODEX_SCOPES)
    got = read_claims(make_jwt(claims))
    assert got is not None
    assert (got.issuer, got.subject, got.client_id) == (claims["iss"], claims["sub"], claims["azp"])
    # OIDC words (openid, profile...) are not scope grammar: they are not exported and cannot be a missing scope.
    assert got.scopes == ("api.connectors.read", "api.connectors.invoke")
    assert got.scopes_listed and got.scopes_complete and got.kind == "user_token"
    assert got.lacks("api.responses.write") and not got.lacks("api.connectors.read")


@pytest.mark.parametrize("claim", ["azp", "client_id", "cid", "appid"])
def test_client_id_claims_of_each_issuer_family(claim):
    got = read_claims(make_jwt({"iss": "i", "sub": "s", claim: "the-app", "scp": ["model.request"]}))
    assert got is not None and got.client_id == "the-app" and got.kind == "user_token"


def test_scp_as_a_list_or_a_string_and_scope_together():
    assert read_claims(make_jwt({"sub": "s", "scp": ["a.b", "c.d"]})).scopes == ("a.b", "c.d")
    assert read_claims(make_jwt({"sub": "s", "scp": "a.b c.d"})).scopes == ("a.b", "c.d")  # Azure AD's form
    both = read_claims(make_jwt({"sub": "s", "scp": ["a.b"], "scope": "c.d a.b"}))
    assert both.scopes == ("a.b", "c.d") and both.scopes_complete


def test_no_scope_claim_means_the_grant_is_unknown():
    got = read_claims(make_jwt({"sub": "s", "azp": "app"}))
    assert got is not None and not got.scopes_listed and not got.lacks("api.responses.write")
    assert got.kind == "token"
    for odd in (42, {"a.b": True}, None, True):  # a scope claim of another shape cannot be read
        assert not read_claims(make_jwt({"sub": "s", "scp": odd})).lacks("a.b")


def test_an_empty_grant_lacks_every_scope():
    got = read_claims(make_jwt({"sub": "s", "scp": []}))
    assert got.scopes_listed and got.scopes_complete and got.lacks("model.request")


def test_a_wildcard_or_an_oversized_grant_is_incomplete():
    assert not read_claims(make_jwt({"sub": "s", "scp": ["api.*"]})).lacks("api.threads.read")
    many = [f"api.s{i}.read" for i in range(MAX_GRANTED_SCOPES + 5)]
    got = read_claims(make_jwt({"sub": "s", "scp": many}))
    assert len(got.scopes) == MAX_GRANTED_SCOPES and not got.scopes_complete
    assert not got.lacks(many[-1])  # past the bound: not certain
    long_string = read_claims(make_jwt({"sub": "s", "scope": " ".join(["a.b"] * 30_000)}))
    assert long_string is None or not long_string.scopes_complete  # too long to read, or read in part


@pytest.mark.parametrize("claims,kind", [
    ({"sub": "svc", "act": {"sub": "system:serviceaccount:ns:app"}}, "workload_identity"),  # RFC 8693 actor
    ({"sub": "svc", "gty": "urn:ietf:params:oauth:grant-type:token-exchange"}, "workload_identity"),
    ({"sub": "svc", "https://api.example/auth": {"service_account_id": "sa_1"}}, "workload_identity"),
    ({"sub": "svc", "identity_provider_id": "idp_1", "scp": ["model.request"], "azp": "x"}, "workload_identity"),
    ({"sub": "u", "azp": "app", "scp": ["model.request"]}, "user_token"),
    ({"sub": "u", "scp": ["model.request"]}, "token"),  # scopes but no client: not told
    ({"sub": "u"}, "token"),
])
def test_kinds_from_claims(claims, kind):
    assert describe(make_jwt(claims)).kind == kind


def test_identity_claims_of_odd_types_and_lengths():
    assert read_claims(make_jwt({"sub": 12345})).subject == "12345"
    assert read_claims(make_jwt({"sub": True, "azp": ["x"]})).identity is None
    assert read_claims(make_jwt({"sub": "s" * 1000})).identity is None  # too long to be an identity


@pytest.mark.parametrize("token", [
    "", "eyJ", "eyJa.b", "eyJa.b.c.d", "sk-proj-abc", "eyJhbGciOi.eyJzdWIi.sig",
    make_jwt({"sub": "s"}).replace(".", ".!", 1),  # not base64url
    b64url(b'{"alg":"none"}') + "." + b64url(b"\xff\xfe") + ".s",  # not UTF-8
    b64url(b'{"alg":"none"}') + "." + b64url(b"[1, 2]") + ".s",  # not an object
    b64url(b'{"alg":"none"}') + "." + b64url(b'{"sub": ') + ".s",  # not JSON
    b64url(b'"x"') + "." + b64url(b'{"sub": "s"}') + ".s",  # the header is not an object
    b64url(b'{"alg":"none"}') + "." + "A" * 5 + ".s",  # impossible base64 length
])
def test_what_is_not_a_readable_jwt(token):
    assert read_claims(token) is None


def test_bounds_of_token_payload_and_nesting():
    claims = {"sub": "s", "pad": "x" * (MAX_PAYLOAD_CHARS)}
    assert read_claims(make_jwt(claims)) is None
    assert read_claims(make_jwt({"sub": "s"}, signature="s" * MAX_TOKEN_CHARS)) is None
    nested: object = "leaf"
    for _ in range(MAX_DEPTH):
        nested = [nested]
    assert read_claims(make_jwt({"sub": "s", "n": nested})) is None  # one level over (the payload is one too)
    assert read_claims(make_jwt({"sub": "s", "n": "[[[[[[[[[[[[[{{{{{{{{"})) is not None  # brackets in strings
    deep = '{"sub": "s", "n": ' + "[" * 3000 + "]" * 3000 + "}"
    assert read_claims(b64url(b'{"alg":"none"}') + "." + b64url(deep.encode()) + ".s") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400) | st.builds(lambda a, b, c: f"eyJ{a}.{b}.{c}", st.text(max_size=80),
                                          st.text(max_size=200), st.text(max_size=40)))
def test_reading_never_raises_on_any_text(token):
    read_claims(token)
    cred = describe(token)
    assert len(cred.fingerprint) == FINGERPRINT_HEX_CHARS or not token


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=60))
def test_reading_never_raises_on_any_bytes_in_the_segments(payload, header):
    for head in (b64url(header), b64url(b'{"alg":"none"}')):
        read_claims("eyJ" + head[3:] + "." + b64url(payload) + ".sig")
        read_claims(head + "." + b64url(payload) + ".sig")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["iss", "sub", "azp", "client_id", "scp", "scope", "act", "gty", "email",
                                        "name", "https://x/auth", "exp"]) | st.text(max_size=8), JSON, max_size=8))
def test_any_claims_give_bounded_values_and_no_claim_value_leaves(claims):
    token = make_jwt(claims)
    got = read_claims(token)
    assert got is not None
    assert len(got.scopes) <= MAX_GRANTED_SCOPES
    cred = describe(token)
    exported = "\n".join((cred.kind, repr(cred).replace(cred.fingerprint, "").replace(cred.hint, ""), repr(got)))
    skeleton = "\n".join((cred.kind, repr(Credential("", cred.kind, "", cred.granted, cred.grant_complete)),
                          repr(Claims(scopes=got.scopes, scopes_listed=got.scopes_listed,
                                      scopes_complete=got.scopes_complete, exchanged=got.exchanged))))
    for value in claim_values(claims):
        if len(value) >= 4 and value not in skeleton:  # the values of fixed text (field names) cannot leak
            assert value not in exported
    assert cred.hint == "eyJ...#" + cred.fingerprint[:4]
    assert not any(piece in exported for piece in segment_pieces(token, 8))


# ---- identity fingerprints -----------------------------------------------------------------------
def test_one_fingerprint_per_identity_across_refreshes():
    user = identity(scp=["api.responses.write"])
    creds = {describe(refresh(user, n)) for n in range(12)}
    assert len(creds) == 1
    (cred,) = creds
    assert cred.kind == "user_token" and cred.granted == ("api.responses.write",)
    assert cred.fingerprint == identity_fingerprint((user["iss"], user["sub"], user["azp"]))


def test_two_identities_are_told_apart():
    a = identity()
    others = [{**a, "sub": rand(20)}, {**a, "iss": "https://other.example"}, {**a, "azp": rand(10)},
              {k: v for k, v in a.items() if k != "azp"}]
    fps = {describe(refresh(c, 0)).fingerprint for c in [a, *others]}
    assert len(fps) == 5


def test_identity_fingerprints_have_their_own_domain_and_honour_the_secret():
    user = identity()
    token = refresh(user, 1)
    ident = (user["iss"], user["sub"], user["azp"])
    assert describe(token).fingerprint != fingerprint(token)
    assert describe(token, b"k").fingerprint == identity_fingerprint(ident, b"k") != describe(token).fingerprint
    # Length-prefixed: moving characters between claims gives another identity.
    assert identity_fingerprint(("ab", "c", "")) != identity_fingerprint(("a", "bc", ""))
    assert hint(token, b"k") == "eyJ...#" + describe(token, b"k").fingerprint[:4]


def test_a_malformed_token_is_fingerprinted_whole():
    for token in ("eyJhbGciOi.eyJzdWIi.sig" + rand(30), make_jwt({"aud": "x"})):  # unreadable; no identity
        cred = describe(token)
        assert cred.fingerprint == fingerprint(token) and cred.kind == "token"
        assert cred.hint == "eyJ...#" + cred.fingerprint[:4]
    assert key_kind("eyJabc") == "other" and looks_like_jwt("eyJa.b.c")


def test_jwt_hints_never_show_the_token():
    user = identity()
    hints = {describe(refresh(user, n)).hint for n in range(5)}
    assert len(hints) == 1  # the same across refreshes (a signature tail would change every time)
    (h,) = hints
    assert h.startswith("eyJ...#") and len(h) == len("eyJ...#") + 4


def test_public_names_and_scope_names_in_claims_are_no_masking_secrets():
    """An issuer's or audience's scheme and host are public (masking their 8-character windows would mangle every
    link in an error message), scope names in other claims are what error messages name (masking one would drop
    the missing scope from the parse); a URL's path and a personal claim shaped like a scope name stay secrets."""
    claims = identity(iss="https://auth.openai.com", aud=["https://api.openai.com/v1"],
                      permissions=["api.threads.read", "api.responses.write"], preferred_username="jane.doe.smith",
                      picture="https://lh3.example.com/a/" + rand(20))
    private = describe(make_jwt(claims)).private
    assert not [v for v in private if "openai.com" in v or "https:" in v or v.startswith("api.")]
    assert "jane.doe.smith" in private and "/a/" + claims["picture"].rsplit("/", 1)[1] in private
    message = ("You have insufficient permissions for this operation. Missing scopes: api.threads.read. See "
               "https://platform.openai.com/docs/guides for more.")
    assert parse_missing_scopes(message, *private) == ("api.threads.read",)
    assert safe_message(message, *private) == message


def test_claim_values_are_kept_for_masking_and_never_shown():
    user = identity(scp=["model.request"], nested={"account": rand(14, "acct_")})
    cred = describe(make_jwt(user))
    assert set(cred.private) >= {user["sub"], user["email"], user["azp"], user["nested"]["account"]}
    assert "model.request" not in cred.private  # the grant is exported; it must not be masked
    with_ids = describe(make_jwt(identity(org_id="org-" + rand(24), auth={"project_id": "proj_" + rand(24)})))
    assert not [v for v in with_ids.private if v.startswith(("org-", "proj_"))]  # sent as headers anyway
    assert not any(v in repr(cred) for v in cred.private)
    crowded = {**{f"x{i}": rand(12) for i in range(40)}, **identity()}  # personal claims come last in the JSON
    kept = describe(make_jwt(crowded)).private
    assert len(kept) <= 16 and {crowded["sub"], crowded["email"], crowded["name"]} <= set(kept)


# ---- the fingerprint command ---------------------------------------------------------------------
def test_cli_fingerprint_of_a_token_says_what_it_used_never_a_claim_value():
    user = identity(scope=CODEX_SCOPES)
    token = refresh(user, 3)
    out = subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "fingerprint", "--stdin"],
                         input=token + "\n", capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OPENAI_API_KEY": ""})
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert f"fingerprint {describe(token).fingerprint}" in text and "kind        user_token" in text
    assert "from        identity claims: issuer, subject, client id" in text
    assert "granted     api.connectors.read api.connectors.invoke" in text
    for value in claim_values(user):
        assert value not in text
    assert not any(piece in text for piece in segment_pieces(token))
    assert json.dumps(user["sub"]) not in text
