"""The fake OpenAI server in its own process (``otel-openai-scopes fake-server``), driven through its control API:
for load and memory tests, whose app threads must not share a GIL with the server they call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from otel_openai_scopes.tools.fake_server import control as _control_api


@contextmanager
def fake_server_process() -> Iterator[str]:
    """Starts ``fake-server --port 0``, yields its base URL (``http://127.0.0.1:PORT/v1``), stops exactly it."""
    proc = subprocess.Popen([sys.executable, "-m", "otel_openai_scopes.tools.cli", "fake-server", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENAI_API_KEY": ""})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield line.split()[4]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def control(base_url: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """One control API call (``/__fake__/ACTION``: grant, lose_scope, reset, accept_any_key, deny, stats...)."""
    root = base_url.rsplit("/v1", 1)[0]
    req = urllib.request.Request(root + _control_api.PREFIX + action, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result
