"""Key -> fingerprint, kind and hint (pure), and the `fingerprint` command."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from otel_openai_scopes.fingerprint import (
    FINGERPRINT_HEX_CHARS,
    credential_from_authorization,
    describe,
    fingerprint,
    hint,
    key_kind,
)

KEY = "sk-proj-" + "Ab3" * 15 + "WXYZ"


def test_fingerprint_is_a_stable_truncated_sha256():
    expected = hashlib.sha256(b"otel-openai-scopes/v1\x00" + KEY.encode()).hexdigest()[:16]
    assert fingerprint(KEY) == expected
    assert len(fingerprint(KEY)) == FINGERPRINT_HEX_CHARS


def test_hmac_changes_the_fingerprint():
    assert fingerprint(KEY, b"secret") != fingerprint(KEY)
    assert fingerprint(KEY, b"secret") == fingerprint(KEY, b"secret")
    assert fingerprint(KEY, b"other") != fingerprint(KEY, b"secret")


@pytest.mark.parametrize("key,kind", [
    ("sk-proj-abc", "project"), ("sk-svcacct-abc", "service_account"), ("sk-admin-abc", "admin"),
    ("sk-abc", "user"), ("eyJhbGciOi.eyJzdWIi.sig", "token"), ("azure-key-123", "other"),
])
def test_kinds(key, kind):
    assert key_kind(key) == kind


def test_hint_shows_prefix_and_last_four_only():
    assert hint(KEY) == "sk-proj-...WXYZ"
    assert hint("sk-svcacct-" + "x" * 30 + "9876") == "sk-svcacct-...9876"
    assert hint("sk-short") == "sk-..."  # too short to show any tail
    assert describe(None).kind == "none" and describe("").fingerprint == ""


def test_authorization_parsing():
    assert credential_from_authorization("Bearer  sk-abc ") == "sk-abc"
    assert credential_from_authorization("bearer sk-abc") == "sk-abc"
    assert credential_from_authorization("Bearer ") is None
    assert credential_from_authorization(None) is None


@given(st.text(max_size=300))
@example("sk-svcacct-")
@example("eyJhbGciOi.eyJzdWIi.sig-and-more-of-it")  # a value that is only a type prefix: its hint was the whole value
def test_any_credential_gives_bounded_safe_output(key):
    cred = describe(key)
    if not key:
        assert cred.kind == "none"
        return
    assert len(cred.fingerprint) == 16 and all(c in "0123456789abcdef" for c in cred.fingerprint)
    tail = cred.hint.rsplit("...", 1)[1]
    assert len(tail) <= 4 or (key.startswith("eyJ") and tail == "#" + cred.fingerprint[:4])
    if len(key) >= 9:
        assert key not in cred.hint


def _cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "fingerprint", *args],
                          input=stdin, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_cli_reads_the_key_from_env_and_prints_what_spans_carry():
    out = _cli(env={"OPENAI_API_KEY": KEY})
    assert out.returncode == 0, out.stderr
    assert f"fingerprint {fingerprint(KEY)}" in out.stdout and "hint        sk-proj-...WXYZ" in out.stdout
    assert KEY[8:20] not in out.stdout + out.stderr


def test_cli_reads_stdin_and_honours_the_secret():
    out = _cli("--stdin", stdin=KEY + "\n", env={"OTEL_INSTRUMENTATION_OPENAI_SCOPES_FINGERPRINT_SECRET": "s"})
    assert out.returncode == 0 and f"fingerprint {fingerprint(KEY, b's')}" in out.stdout


def test_cli_without_a_key_fails_clearly():
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    out = subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "fingerprint"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 2 and "no key" in out.stderr
