"""Small helpers for running the same test on openai 1.35.7 and 3.x."""

from __future__ import annotations

import openai
import pytest

SDK_MAJOR = int(openai.__version__.split(".")[0])


def http_module():  # type: ignore[no-untyped-def]
    """The HTTP library the installed openai is built on: ``httpx2`` (openai 3.x) or ``httpx`` (earlier)."""
    from openai import _base_client

    return getattr(_base_client, "httpx2", None) or _base_client.httpx


def vector_stores(client):
    vs = getattr(client, "vector_stores", None) or getattr(client.beta, "vector_stores", None)
    if vs is None:
        pytest.skip(f"no vector_stores in openai {openai.__version__}")
    return vs


def require(client, dotted: str):
    obj = client
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            pytest.skip(f"{dotted} not in openai {openai.__version__}")
    return obj
