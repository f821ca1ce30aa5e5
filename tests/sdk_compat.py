"""Moved to tests/support/sdk.py; this name stays for tests written against it on other branches (new tests import
tests.support.sdk)."""

from tests.support.sdk import SDK_MAJOR, require, vector_stores  # noqa: F401
