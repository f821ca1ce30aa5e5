"""Credentials for tests: random, so any leaked substring is unmistakable; :func:`leaked_pieces` finds one.

Documented bound: telemetry may show a key's type prefix (``sk-proj-``) and its last 4 characters (the hint); no
8-character window of a key outside its type prefix may appear anywhere."""

from __future__ import annotations

import secrets
import string

from otel_openai_scopes.fingerprint import key_prefix

ALPHABET = string.ascii_letters + string.digits


def make_key(prefix: str = "sk-proj-", n: int = 48) -> str:
    """A random, realistic-looking API key."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(n))


WINDOW = 8


def leaked_pieces(key: str, haystack: str) -> list[str]:
    prefix_len = len(key_prefix(key))
    found = []
    for i in range(0, len(key) - WINDOW + 1):
        if i + WINDOW <= prefix_len:
            continue  # inside the documented type prefix
        piece = key[i:i + WINDOW]
        if piece in haystack:
            found.append(piece)
    return found
