"""Moved to tests/support/tokens.py; this name stays for tests written against it on other branches (new tests import
tests.support.tokens)."""

from tests.support.tokens import *  # noqa: F403
from tests.support.tokens import b64url, claim_values, identity, make_jwt, rand, refresh, segment_pieces  # noqa: F401
