"""Moved to tests/support/tokens.py; this name stays until the test files move into their tier folders."""

from tests.support.tokens import *  # noqa: F403
from tests.support.tokens import b64url, claim_values, identity, make_jwt, rand, refresh, segment_pieces  # noqa: F401
