"""The documented ``report --json`` document (README: "report --json"): built as plain data, then written."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from .fleet import explanation
from .outcome import EXIT_UNREADABLE, exit_code
from .timeaxis import iso
from .windows import Window

if TYPE_CHECKING:
    from .fold import Analysis

SCHEMA = "otel-openai-scopes/report/1"


def _window(w: Window) -> dict[str, Any]:
    return {
        "start": iso(w.start_ns),
        "end": iso(w.end_ns),
        "fingerprint": w.fingerprint,
        "hint": w.hint,
        "organization": w.organization,
        "project": w.project,
        "host": w.host,
        "passing_contexts": [{"organization": o, "project": p, "successes": n} for (o, p), n in
                             w.other_contexts.items()]
        + [{"organization": o, "project": p, "successes": 0} for (o, p) in w.live_contexts
           if (o, p) not in w.other_contexts],
        "scopes": list(w.scopes),
        "diagnosis": w.diagnosis,
        "explanation": explanation(w),
        "diagnosis_history": [{"diagnosis": p.diagnosis, "errors": p.errors, "first": iso(p.first_ns),
                               "last": iso(p.last_ns)} for p in w.history()],
        "process_diagnoses": {p: dict(c) for p, c in sorted(w.process_diagnoses.items())},
        "errors": w.errors,
        "mutated_errors": w.mutated_errors,
        "successes_same_key": w.successes_same_key,
        "successes_other_processes": w.successes_other_processes,
        "endpoints": dict(w.endpoints.most_common()),
        "clients": [{"id": c.id, "origin": c.origin, "process": c.process, "errors": c.errors,
                     "mutated": sorted(c.mutated)} for c in w.clients.values()],
        "clients_failing": len(w.client_ids),
        "processes_failing": len(w.processes),
        "processes_seen": w.processes_seen,
        "request_ids": [rid for _, rid in w.request_ids],
        "token_grants": [{"scopes": list(g), "lacks_missing": lacks, "errors": n}
                         for (g, lacks), n in sorted(w.grants.items(), key=lambda kv: (-kv[1], kv[0]))],
        "errors_grant_lacks_scope": w.grant_lacks,
        "derived_clients": [{"client": d.client, "origin": d.origin, "parent": d.parent,
                             "parent_origin": d.parent_origin, "changed": list(d.changed),
                             "parent_passed": d.parent_passed,
                             "pattern": "shared_client_rebound" if d.rebound else "per_tenant_client"}
                            for d in w.derived],
    }


def to_json(analysis: Analysis, error: str | None = None) -> dict[str, Any]:
    """The document, as plain data."""
    return {
        "schema": SCHEMA,
        "error": error,
        "files": [{"path": f.path, "compression": f.compression, "lines": f.lines, "spans": f.spans,
                   "other_signal_lines": f.other_signals, "unreadable_lines": f.unreadable,
                   "unreadable_reasons": dict(f.reasons), "problem": f.problem or None} for f in analysis.files],
        "unreadable_lines": analysis.unreadable_lines,
        "warnings": list(analysis.warnings),
        "totals": {
            "spans": analysis.spans,
            "calls": analysis.calls,
            "ok": analysis.calls_ok,
            "scope_errors": analysis.scope_errors,
            "keys": len(analysis.keys),
            "clients": len(analysis.clients),
            "processes": len(analysis.processes),
            "windows": len(analysis.windows),
            "start": iso(analysis.start_ns) if analysis.calls else None,
            "end": iso(analysis.end_ns) if analysis.calls else None,
            "bucket_seconds": analysis.bucket_seconds(),
        },
        "windows": [_window(w) for w in analysis.windows],
        "exit_code": EXIT_UNREADABLE if error else exit_code(analysis),
    }


def write_json(analysis: Analysis, out: IO[str], error: str | None = None) -> None:
    json.dump(to_json(analysis, error), out, indent=2)
    out.write("\n")
