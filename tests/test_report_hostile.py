"""``report`` on hostile files (issue 16): untrusted text inert on the terminal and in the page, malformed lines
unreadable with a reason (never a crash, never exit 1 for one), memory bounded whatever the number of distinct
keys, scopes and windows, and ``--html`` into a missing folder refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.tools.otlp_file import dumps_line
from otel_openai_scopes.tools.report import analyze, analyze_files, render_html, to_json

BIN = Path(sys.executable).parent
T0 = 1_800_000_000 * 1_000_000_000
MS = 1_000_000
READ = "api.threads.read"
RUNS = "/v1/threads/{thread_id}/runs"
# What a terminal must never receive raw: C0 (but newline) and C1 controls, DEL, bidi and zero-width format marks.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def s(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def i(key: str, value: int) -> dict:
    return {"key": key, "value": {"intValue": str(value)}}


def strings(key: str, values: list[str]) -> dict:
    return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in values]}}}


def attrs(*, status: int = 401, fp: str = "fp-a", scopes: tuple = (READ,), client: str = "c-1",
          origin: str = "app.py:3", hint: str = "", diagnosis: str = V.UNKNOWN, template: str = RUNS,
          mutated: tuple = ()) -> list[dict]:
    out = [s(A.TEMPLATE, template), s(A.HTTP_METHOD, "GET"), i(A.HTTP_STATUS, status), s(A.KEY_FINGERPRINT, fp),
           s(A.CLIENT_ID, client), s(A.CLIENT_ORIGIN, origin), strings(A.SCOPE_REQUIRED, [READ])]
    if hint:
        out.append(s(A.KEY_HINT, hint))
    if status == 401:
        out += [{"key": A.SCOPE_ERROR, "value": {"boolValue": True}}, strings(A.SCOPE_MISSING, list(scopes)),
                s(A.DIAGNOSIS, diagnosis)]
    if mutated:
        out.append(strings(A.CLIENT_MUTATED, list(mutated)))
    return out


def span(t: int, attributes: list[dict], **extra: Any) -> dict:
    return {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "GET " + RUNS, "kind": 3,
            "startTimeUnixNano": str(t), "endTimeUnixNano": str(t + MS), "attributes": attributes, **extra}


def line(spans: list[dict], resource: list[dict] | None = None) -> bytes:
    return dumps_line({"resourceSpans": [{"resource": {"attributes": resource or [s("service.instance.id", "p1")]},
                                          "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}) + b"\n"


def report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-openai-scopes"), "report", *args], capture_output=True, text=True,
                          timeout=120)


# ---- (a) untrusted text is inert ----------------------------------------------------------------------
ESC = "\x1b]0;pwned\x07\x1b[2K\x1b[1A\x1b]52;c;ZWNobyBoaQ==\x07\u202eevil\x9b"


def test_escape_sequences_in_telemetry_never_reach_the_terminal(tmp_path):
    """Service name, origin, client id, hint, fingerprint, live verdict, file name: shown as visible escapes."""
    f = tmp_path / f"t{ESC[:4]}.jsonl"
    hostile = [span(T0 + k * MS, attrs(fp="fp" + ESC, hint="sk-proj-..." + ESC, client="c" + ESC, origin="app.py" + ESC,
                                       diagnosis="unknown" + ESC, mutated=("api_key",)))
               for k in range(4)]
    f.write_bytes(line(hostile, [s("service.name", "svc" + ESC), i("process.pid", 7)]) + b"garbage\n")
    out = report(str(f))
    assert out.returncode == 1, out.stderr
    for text in (out.stdout, out.stderr):
        assert RAW_CONTROL.search(text) is None, RAW_CONTROL.findall(text)
    assert "\\x1b]0;pwned\\x07" in out.stdout and "\\u202eevil" in out.stdout  # shown, not hidden
    assert "built at app.py\\x1b" in out.stdout and "process svc\\x1b" in out.stdout
    assert "warning: 1 of 2 lines unreadable in" in out.stderr and "t\\x1b]0;" in out.stderr


def test_the_page_escapes_attributes_hover_text_and_script_data(tmp_path):
    quote = '"><script>alert(1)</script><x a="'
    spans = [span(T0 + k * MS, attrs(fp="fp" + quote, hint=quote + ESC, client=quote, origin=quote,
                                      mutated=("api_key",))) for k in range(4)]
    f = tmp_path / "t.jsonl"
    f.write_bytes(line(spans, [s("service.name", quote + ESC)]))
    page = render_html(analyze_files([f]))
    assert "<script>alert" not in page and "<x a=" not in page
    assert page.count("<script>") == 1  # the page's own cursor script, nothing else
    assert RAW_CONTROL.search(page.replace("\n", "")) is None
    assert 'data-fingerprint="fp&quot;&gt;&lt;script&gt;' in page


# ---- (b) malformed lines are unreadable, never a crash --------------------------------------------------
def _nested(depth: int) -> str:
    return '{"key":"x","value":' + '{"arrayValue":{"values":[' * depth + "]}}" * depth + "}"


HOSTILE_LINES = {
    "deeply nested arrays": ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","attributes":['
                             + _nested(200_000) + "]}]}]}]}\n").encode(),
    "nested kvlist": ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","attributes":[{"key":"x","value":'
                      '{"kvlistValue":' + '{"values":[{"key":"k","value":{"kvlistValue":' * 50_000
                      + "}}]}" * 50_000 + "}}]}]}]}]}\n").encode(),
    "Infinity status code": line([span(T0, [*attrs()[:2], {"key": A.HTTP_STATUS,
                                                            "value": {"doubleValue": "Infinity"}}])]),
    "NaN status code": line([span(T0, [*attrs()[:2], {"key": A.HTTP_STATUS, "value": {"doubleValue": "NaN"}}])]),
    "a string where a number belongs": line([span(T0, [*attrs(), {"key": A.REQUEST_ID,
                                                                   "value": {"intValue": "abc"}}])]),
    "a timestamp beyond datetime's range": line([{**span(T0, attrs()), "startTimeUnixNano": str(10**30)}]),
    "a negative timestamp": line([{**span(T0, attrs()), "startTimeUnixNano": "-5"}]),
    "a number where a string belongs": line([span(T0, [*attrs(), {"key": A.CLIENT_ORIGIN,
                                                                   "value": {"stringValue": 12}}])]),
    "an object as a span name": line([{**span(T0, attrs()), "name": {"a": 1}}]),
    "a number as a key": line([span(T0, [*attrs(), {"key": 5, "value": {"stringValue": "x"}}])]),
    "an array nested in an array attribute": line([span(T0, [*attrs(), {"key": A.SCOPE_MISSING, "value": {
        "arrayValue": {"values": [{"arrayValue": {"values": [{"stringValue": READ}]}}]}}}])]),
}


@pytest.mark.parametrize("name", list(HOSTILE_LINES))
def test_one_hostile_line_among_good_ones_is_an_unreadable_line_with_a_reason(tmp_path, name):
    good = line([span(T0 + k * MS, attrs()) for k in range(3)])
    f = tmp_path / "t.jsonl"
    f.write_bytes(good + HOSTILE_LINES[name] + good)
    out = report(str(f), "--json")
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.returncode == 1, out.stderr  # the scope errors of the good lines: exit 1 means exactly that
    doc = json.loads(out.stdout)
    assert doc["unreadable_lines"] == 1 and doc["totals"]["spans"] == 6, doc["files"]
    (reason,) = doc["files"][0]["unreadable_reasons"]
    assert "wrong type" in reason or "nested" in reason, reason
    warning = [ln for ln in out.stderr.splitlines() if ln.startswith("warning:")]
    assert warning and "1 of 3 lines unreadable" in warning[0]


def test_non_finite_doubles_where_the_report_reads_no_number_are_valid_otlp(tmp_path):
    """The protobuf JSON mapping writes NaN and infinite doubles as strings (our exporter does too): a line with one
    in an attribute the report gives no meaning is read, not counted unreadable."""
    extra = [{"key": "app.ratio", "value": {"doubleValue": v}} for v in ("NaN", "Infinity", "-Infinity")]
    f = tmp_path / "t.jsonl"
    f.write_bytes(line([span(T0 + k * MS, [*attrs(), *extra]) for k in range(3)]))
    analysis = analyze_files([f])
    assert analysis.unreadable_lines == 0 and analysis.scope_errors == 3


def test_an_internal_error_is_exit_2_with_one_line_never_1(tmp_path, monkeypatch):
    """Exit 1 means "scope errors found": a crash must never look like that to automation."""
    from typer.testing import CliRunner

    from otel_openai_scopes.tools import report as R
    from otel_openai_scopes.tools.commands import app

    def boom(*a: Any, **kw: Any) -> None:
        raise RuntimeError("boom \x1b[2J")

    f = tmp_path / "t.jsonl"
    f.write_bytes(line([span(T0, attrs())]))
    monkeypatch.setattr(R, "analyze_files", boom)
    result = CliRunner().invoke(app, ["report", str(f)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report: internal error") and "boom \\x1b[2J" in lines[0]
    assert "Traceback" not in result.output


# ---- (c) bounded whatever the input names ---------------------------------------------------------------
def distinct_keys(n: int, start: int = 0) -> list:
    from tests.support.spans import err

    return [err(T0 + k * MS, key=f"{k:016x}", client="c-1", process="p1") for k in range(start, start + n)]


def test_windows_are_keyed_by_the_capped_fingerprint():
    from otel_openai_scopes.tools.report import limits as L

    analysis = analyze(distinct_keys(L.MAX_KEYS + 500), gap_seconds=60)
    assert len(analysis.keys) == L.MAX_KEYS + 1 and L.OTHER in analysis.keys
    assert {w.fingerprint for w in analysis.windows} == set(analysis.keys)
    (other,) = [w for w in analysis.windows if w.fingerprint == L.OTHER]
    assert other.errors == 500
    assert any("keys" in w and L.OTHER in w for w in analysis.warnings)


def test_missing_scopes_that_are_not_scope_names_make_no_window_of_their_own():
    from tests.support.spans import err

    junk = ["sk-proj-" + "A" * 40, "API.Threads.Read", "x" * 500, "api.threads.read\x1b[2J", "a.b.c.d.e.f.g.h"]
    spans = [err(T0 + k * MS, missing=(READ, junk[k % len(junk)])) for k in range(20)]
    (w,) = analyze(spans).windows
    assert w.scopes == (READ,)


def test_windows_are_capped():
    """Errors of one key far apart in time: at most MAX_WINDOWS windows, every error counted in one of them."""
    from otel_openai_scopes.tools.report import limits as L
    from tests.support.spans import err

    n = L.MAX_WINDOWS + 300
    analysis = analyze([err(T0 + k * 10 * 60 * 1_000 * MS) for k in range(n)], gap_seconds=1)
    assert len(analysis.windows) <= L.MAX_WINDOWS
    assert sum(w.errors for w in analysis.windows) == n == analysis.scope_errors
    assert any("windows" in w for w in analysis.warnings)
    to_json(analysis)


def _traced_peak(spans: list) -> int:
    tracemalloc.start()
    try:
        analyze(iter(spans), gap_seconds=60)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_number_of_distinct_keys_scopes_and_clients():
    """Past the caps, ten times the distinct keys (each with its own scope, client and endpoint) cost about the
    same memory (traced allocations, not wall-clock): today's main grows tenfold."""
    from tests.support.spans import err

    def hostile(n: int) -> list:
        return [err(T0 + k * MS, key=f"{k:016x}", client=f"client-{k}", missing=(f"api.hostile{k}.read",),
                    template=f"/v1/hostile/{k}", process="p1") for k in range(n)]

    small, large = _traced_peak(hostile(3_000)), _traced_peak(hostile(30_000))
    assert large < small * 1.5, (small, large)


# ---- (d) --html into a folder that does not exist ------------------------------------------------------
def test_html_into_a_missing_folder_is_refused_not_created(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(line([span(T0, attrs())]))
    out = report(str(f), "--html", str(tmp_path / "no-such-dir" / "r.html"))
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == f"report: --html {tmp_path / 'no-such-dir' / 'r.html'}: no such directory " \
                                 f"{tmp_path / 'no-such-dir'}"
    assert not (tmp_path / "no-such-dir").exists() and out.stdout == ""
