"""Moved to tests/support/sdk.py; this name stays until the test files move into their tier folders."""

from tests.support.sdk import SDK_MAJOR, require, vector_stores  # noqa: F401
