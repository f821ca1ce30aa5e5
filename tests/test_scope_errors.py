"""Error body -> missing scopes (pure), and masking of credentials in messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_openai_scopes.redact import MAX_MESSAGE_CHARS, mask_credentials, safe_message
from otel_openai_scopes.scope_errors import parse_error, parse_missing_scopes
from otel_openai_scopes.scope_names import MAX_SCOPES

SEED = ("You have insufficient permissions for this operation. Missing scopes: api.threads.read. Check that you have "
        "the correct role in your organization (Reader, Writer, Owner) and project (Viewer, Member, Owner), and if "
        "you're using a restricted API key, that it has the necessary scopes.")


@pytest.mark.parametrize("message,expected", [
    (SEED, ("api.threads.read",)),
    ("Missing scopes: api.responses.read, api.responses.write.", ("api.responses.read", "api.responses.write")),
    ("You have insufficient permissions for this operation. Missing scopes: model.request. Check that you have the "
     "correct role in your organization (Reader, Writer, Owner) and project (Member, Owner)", ("model.request",)),
    ("Missing scopes: api.management.read. Check that you have the correct role in your organization",
     ("api.management.read",)),
    ("missing scope: vector_store.write", ("vector_store.write",)),
    ("Missing scopes: api.batch.write and api.files.write", ("api.batch.write", "api.files.write")),
    ("Missing scopes: `api.model.read`, 'model.read'.", ("api.model.read", "model.read")),
    ("Missing scopes:api.threads.read,api.threads.write", ("api.threads.read", "api.threads.write")),
    ("Missing scopes: api.threads.read\nnext line api.other", ("api.threads.read",)),
    ("Incorrect API key provided", ()),
    ("", ()),
    ("Missing scopes: ", ()),
    ("Missing scopes: ???, <script>", ()),
])
def test_message_variants(message, expected):
    assert parse_missing_scopes(message) == expected


def test_body_shapes():
    body = {"error": {"message": SEED, "type": "invalid_request_error", "code": None}}
    assert parse_error(401, body).missing_scopes == ("api.threads.read",)
    new = parse_error(401, {"error": {"message": SEED, "code": "missing_scope"}})
    assert new.code == "missing_scope" and new.is_scope_error
    assert parse_error(401, json.dumps({"error": {"message": SEED}})).missing_scopes == ("api.threads.read",)
    assert parse_error(401, {"message": SEED}).missing_scopes == ("api.threads.read",)
    assert parse_error(401, {"error": SEED}).missing_scopes == ("api.threads.read",)
    html = parse_error(401, "<html><body>401 Authorization Required</body></html>")
    assert not html.is_scope_error and "401 Authorization Required" in html.message
    assert parse_error(401, None).message == "" and parse_error(401, b"").missing_scopes == ()
    assert parse_error(401, b'{"error": {"message": "Missing scopes: a.b"').missing_scopes == ("a.b",)
    assert parse_error(401, [1, 2, 3]).missing_scopes == ()
    assert parse_error(401, {"error": {"message": 42, "code": {"x": 1}}}).code == ""


def test_huge_body_is_bounded():
    body = "A" * 5_000_000 + " Missing scopes: never.seen"
    info = parse_error(401, body)
    assert info.missing_scopes == () and len(info.message) <= MAX_MESSAGE_CHARS
    many = "Missing scopes: " + ", ".join(f"s{i}.read" for i in range(100))
    assert len(parse_missing_scopes(many)) == MAX_SCOPES


def test_credentials_in_messages_are_masked():
    key = "sk-proj-" + "Q" * 40 + "WXYZ"
    info = parse_error(401, {"error": {"message": f"Incorrect API key provided: {key}."}})
    assert key[:12] not in info.message and "***" in info.message
    assert "abcdefghijklm" not in mask_credentials("Bearer abcdefghijklm")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    assert "dozjg" not in mask_credentials(f"token {jwt} expired")
    assert "secretvalue123" not in mask_credentials("x secretvalue123 y", "secretvalue123")
    plain = "api.threads.read org-abc proj_abc req_0123456789abcdef"
    assert mask_credentials(plain) == plain


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=4096), st.text(max_size=4096),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=50),
                              lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                              max_leaves=20)))
def test_any_body_never_raises_and_stays_bounded(body):
    info = parse_error(401, body)
    assert len(info.message) <= MAX_MESSAGE_CHARS
    assert len(info.missing_scopes) <= MAX_SCOPES
    assert all(len(s) <= 64 for s in info.missing_scopes)


@given(st.text(max_size=2000))
def test_parse_missing_scopes_on_any_text(text):
    scopes = parse_missing_scopes(text)
    assert all(s and s[0].isalpha() for s in scopes)
    assert len(set(scopes)) == len(scopes)


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=20, max_size=120))
def test_masking_removes_any_sk_key(secret_tail):
    key = "sk-proj-" + "".join(c for c in secret_tail if c.isalnum() or c in "-_") + "Zz9"
    if len(key) < 20:
        return
    text = safe_message(f"error for {key} done", key)
    assert key[8:] not in text
