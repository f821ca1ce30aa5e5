"""Credentials for tests: random, so any leaked substring is unmistakable."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def make_key(prefix: str = "sk-proj-", n: int = 48) -> str:
    """A random, realistic-looking API key."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(n))
