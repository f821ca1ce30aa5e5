"""Spans as ``report`` reads them (:class:`SpanRecord`), made by hand: one call or scope error at a time, and a
file of them as OTLP JSON lines; for the report tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools.otlp_file import dumps_line, key_values
from otel_openai_scopes.tools.otlp_json import SpanRecord

MS = 1_000_000
T0 = 1_800_000_000 * 1_000_000_000  # 2027-01-15, a round start
RUNS = "/v1/threads/{thread_id}/runs"
READ = "api.threads.read"


def call(start: int, key: str | None = "fp-a", status: int = 200, *, scope_error: bool = False,
         diagnosis: str = A.DIAGNOSIS_UNKNOWN, client: str = "c-1", process: str = "p1",
         missing: tuple = (READ,), mutated: tuple = (), template: str = RUNS, rid: str = "",
         hint: str = "", required: tuple = (READ,)) -> SpanRecord:
    attrs: dict[str, Any] = {A.TEMPLATE: template, A.HTTP_METHOD: "GET", A.HTTP_STATUS: status,
                             A.CLIENT_ID: client, A.CLIENT_ORIGIN: f"app.py:{client}",
                             A.SCOPE_REQUIRED: list(required)}
    if key is not None:
        attrs[A.KEY_FINGERPRINT] = key
    if hint:
        attrs[A.KEY_HINT] = hint
    if scope_error:
        attrs.update({A.SCOPE_ERROR: True, A.SCOPE_MISSING: list(missing), A.DIAGNOSIS: diagnosis})
        if mutated:
            attrs[A.CLIENT_MUTATED] = list(mutated)
    if rid:
        attrs[A.REQUEST_ID] = rid
    return SpanRecord(f"GET {template}", start, start + MS // 2, attrs, {"service.instance.id": process})


def err(start: int, **kw: Any) -> SpanRecord:
    kw.setdefault("status", 401)
    return call(start, scope_error=True, **kw)


def write_fleet_file(path: Path, spans: list[SpanRecord], rnd: random.Random) -> None:
    """OTLP JSON lines in the given order, consecutive spans of one process batched into lines of 1..7 spans."""
    lines, k = [], 0
    while k < len(spans):
        n = rnd.randint(1, 7)
        batch = [s for s in spans[k:k + n] if s.process == spans[k].process]
        k += len(batch)
        items = [{"traceId": "ab" * 16, "spanId": "cd" * 8, "name": s.name, "kind": 3,
                  "startTimeUnixNano": str(s.start_ns), "endTimeUnixNano": str(s.end_ns),
                  "attributes": key_values(s.attributes)} for s in batch]
        lines.append(dumps_line({"resourceSpans": [{"resource": {"attributes": key_values(batch[0].resource)},
                                                    "scopeSpans": [{"scope": {"name": "x"}, "spans": items}]}]}))
    path.write_bytes(b"\n".join(lines) + b"\n")
