"""A sample app run as a user runs it (``opentelemetry-instrument python app.py``), and its console output read."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: the lane's console scripts (otel-openai-scopes, opentelemetry-instrument)
BIN = Path(sys.executable).parent

#: one successful chat call, then a scope error (prints "got 401"); reads OPENAI_API_KEY and FAKE_BASE_URL
APP = """
import openai, os
c = openai.OpenAI(base_url=os.environ["FAKE_BASE_URL"], max_retries=0)
c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
try:
    c.beta.threads.runs.list("thread_1")
except openai.AuthenticationError as e:
    print("got", e.status_code)
"""


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed (one pretty JSON object per span)."""
    spans, depth, buf = [], 0, []
    for line in stdout.splitlines():
        if not buf and not line.startswith("{"):
            continue
        buf.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0:
            spans.append(json.loads("\n".join(buf)))
            buf = []
    return spans
