"""``report``: reading with accounting, windows per key and scope set, the fleet verdict, --json, bounded
memory, and the HTML timeline opened in headless Chromium."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools.otlp_file import dumps_line
from otel_openai_scopes.tools.otlp_json import SpanRecord, split_points
from otel_openai_scopes.tools.report import (
    EXIT_CLEAR,
    EXIT_SCOPE_ERRORS,
    EXIT_UNREADABLE,
    analyze,
    analyze_files,
    explanation,
    fleet_verdict,
    render_html,
    to_json,
    verdict_lines,
)
from otel_openai_scopes.tools.timegrid import Grid
from tests.support.browser import ARTIFACTS, browser_flags, chromium
from tests.support.spans import MS, READ, RUNS, T0, call, err, write_fleet_file

BIN = Path(sys.executable).parent


# ---- windows: per key and scope set, order-independent ------------------------------------------------
def brute_windows(spans: list[SpanRecord], gap_ns: int) -> set:
    """The definition: sort each (key, scopes)'s errors by start; a gap > gap_ns after the latest end splits."""
    groups: dict[tuple, list[SpanRecord]] = {}
    for s in spans:
        if s.attributes.get(A.SCOPE_ERROR):
            k = (s.attributes.get(A.KEY_FINGERPRINT, ""), tuple(sorted(set(s.attributes[A.SCOPE_MISSING]))))
            groups.setdefault(k, []).append(s)
    out = set()
    for k, errs in groups.items():
        errs.sort(key=lambda s: s.start_ns)
        start, end, n = errs[0].start_ns, errs[0].end_ns, 1
        for s in errs[1:]:
            if s.start_ns - end > gap_ns:
                out.add((k, start, end, n))
                start, end, n = s.start_ns, s.end_ns, 0
            end = max(end, s.end_ns)
            n += 1
        out.add((k, start, end, n))
    return out


rows = st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["fp-a", "fp-b"]),
                          st.sampled_from([200, 404, 500, 401]), st.sampled_from([(READ,), ("api.threads.write",)]),
                          st.sampled_from(["p1", "p2", "p3"])), max_size=80)


@settings(max_examples=150, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_windows_follow_the_gap_definition_in_any_arrival_order(data, rnd):
    spans = [err(T0 + t * MS, key=k, missing=m, process=p) if status == 401 else call(T0 + t * MS, key=k, status=status,
                                                                                        process=p)
             for t, k, status, m, p in data]
    gap = 7 * MS
    expected = brute_windows(spans, gap)
    rnd.shuffle(spans)
    analysis = analyze(spans, gap_seconds=gap / 1e9)
    got = {((w.fingerprint, w.scopes), w.start_ns, w.end_ns, w.errors) for w in analysis.windows}
    assert got == expected
    assert sum(w.errors for w in analysis.windows) == analysis.scope_errors


@settings(max_examples=100, deadline=None)
@given(rows, st.integers(4, 64))
def test_successes_same_key_counts_every_passing_call_in_the_windows_buckets(data, max_buckets):
    """Counted per time bucket (bounded memory): exactly the same-key calls that passed the scope check
    (2xx/3xx/404) on the window's endpoints, in the buckets from the window's first to its last."""
    spans = [err(T0 + t * MS * 50, key=k, missing=(READ,), process=p) if status == 401
             else call(T0 + t * MS * 50, key=k, status=status, process=p) for t, k, status, _, p in data]
    analysis = analyze(spans, gap_seconds=0.4, max_buckets=max_buckets)
    width = analysis.grid.width_ns
    assert analysis.grid.buckets() <= max_buckets
    for w in analysis.windows:
        lo, hi = w.start_ns // width, w.end_ns // width
        expected = [s for s in spans if not s.attributes.get(A.SCOPE_ERROR)
                    and s.attributes[A.HTTP_STATUS] in (200, 404)
                    and s.attributes[A.KEY_FINGERPRINT] == w.fingerprint and lo <= s.start_ns // width <= hi]
        assert w.successes_same_key == len(expected)
        assert w.successes_other_processes == sum(1 for s in expected if s.process not in w.processes)


def test_one_window_per_key_and_scope_set_with_the_live_verdicts_inside():
    """Two processes judged the same burst differently (unknown, never_granted): one window, both in its history."""
    spans = [err(T0 + i * MS, diagnosis=A.DIAGNOSIS_UNKNOWN, process="p1") for i in range(2)]
    spans += [err(T0 + i * MS, diagnosis=A.DIAGNOSIS_NEVER_GRANTED, process="p2") for i in range(2, 6)]
    analysis = analyze(spans)
    assert len(analysis.windows) == 1
    w = analysis.windows[0]
    assert [(p.diagnosis, p.errors) for p in w.history()] == [(A.DIAGNOSIS_UNKNOWN, 2), (A.DIAGNOSIS_NEVER_GRANTED, 4)]
    assert {p: dict(c) for p, c in w.process_diagnoses.items()} == {"p1": {A.DIAGNOSIS_UNKNOWN: 2},
                                                                   "p2": {A.DIAGNOSIS_NEVER_GRANTED: 4}}
    assert w.diagnosis == A.DIAGNOSIS_NEVER_GRANTED
    line = verdict_lines(analysis)[0]
    assert "Live verdicts in the processes: unknown (2) -> never_granted (4)" in line


# ---- the fleet verdict -----------------------------------------------------------------------------------
def test_other_processes_successes_make_it_platform_side_although_the_failing_pod_said_never_granted():
    """A pod that started during the flap has no success of its own: its spans say unknown/never_granted.
    Its siblings succeeded with the same key on the same endpoint meanwhile: the fleet says scope_flapping."""
    spans = [err(T0 + i * 100 * MS, diagnosis=A.DIAGNOSIS_UNKNOWN if i < 2 else A.DIAGNOSIS_NEVER_GRANTED,
                 process="new-pod", client="n-1") for i in range(6)]
    spans += [call(T0 + i * 100 * MS + 50 * MS, process=f"old-pod-{i % 2}", client=f"o-{i % 2}") for i in range(6)]
    w = analyze(spans, gap_seconds=5).windows[0]
    assert w.diagnosis == A.DIAGNOSIS_SCOPE_FLAPPING
    # the sixth success comes after the last error, outside the window
    assert w.successes_same_key == 5 and w.successes_other_processes == 5 and w.processes_succeeding == 2
    text = explanation(w)
    assert text.startswith("platform-side") and "5 of them in 2 other processes" in text
    assert "1 process with no success of its own said unknown/never_granted" in text


def test_successes_on_other_endpoints_or_other_keys_are_no_evidence():
    spans = [err(T0 + i * 100 * MS, process="p1") for i in range(5)]
    spans += [call(T0 + i * 100 * MS + 1, template="/v1/chat/completions", process="p2", required=("model.request",))
              for i in range(5)]
    spans += [call(T0 + i * 100 * MS + 2, key="fp-other", process="p3") for i in range(5)]
    w = analyze(spans, gap_seconds=5).windows[0]
    assert w.successes_same_key == 0
    assert w.diagnosis == A.DIAGNOSIS_NEVER_GRANTED  # restricted everywhere stays never_granted
    text = explanation(w)
    assert text.startswith("configuration") and "3 processes seen" in text
    assert "succeed" not in text and "kept working" not in text


def test_a_mutated_client_stays_the_apps_fault_and_claims_only_what_happened():
    lone = [err(T0 + i * MS, mutated=("api_key",), diagnosis=A.DIAGNOSIS_CLIENT_MUTATED, key="fp-tenant")
            for i in range(4)]
    w = analyze(lone).windows[0]
    assert w.diagnosis == A.DIAGNOSIS_CLIENT_MUTATED
    text = explanation(w)
    assert "No other client made a successful call meanwhile" in text and "kept working" not in text
    # another client kept working during the window: now, and only now, the sentence says so
    busy = lone + [call(T0 + i * MS, key="fp-main", client="c-2") for i in range(3)]
    w = analyze(busy).windows[0]
    assert w.diagnosis == A.DIAGNOSIS_CLIENT_MUTATED
    assert "Other clients kept working: 3 successful calls from 1 other client" in explanation(w)
    # same-key successes elsewhere do not turn a mutated client into a platform problem
    w = analyze([*lone, call(T0 + MS, key="fp-tenant", client="c-3")]).windows[0]
    assert w.diagnosis == A.DIAGNOSIS_CLIENT_MUTATED


def test_fleet_verdict_rules():
    F, M, N, U = A.DIAGNOSIS_SCOPE_FLAPPING, A.DIAGNOSIS_CLIENT_MUTATED, A.DIAGNOSIS_NEVER_GRANTED, A.DIAGNOSIS_UNKNOWN
    assert fleet_verdict(5, 5, 10, {M: 5}) == M
    assert fleet_verdict(5, 0, 1, {N: 5}) == F
    assert fleet_verdict(5, 0, 0, {F: 1, U: 4}) == F  # a process saw a success shortly before
    assert fleet_verdict(5, 0, 0, {U: 5}) == N
    assert fleet_verdict(2, 0, 0, {U: 2}) == U
    assert fleet_verdict(4, 2, 0, {U: 4}) == U  # 2 from mutated clients, 2 others: too few for never_granted


# ---- reading: counts, and never an all-clear for what could not be read -----------------------------------
def _otlp_line(spans: int, start: int = T0, *, error_every: int = 0, process: str = "p1") -> bytes:
    items = []
    for i in range(spans):
        is_err = error_every and i % error_every == 0
        attrs = [{"key": A.TEMPLATE, "value": {"stringValue": RUNS}},
                 {"key": A.HTTP_METHOD, "value": {"stringValue": "GET"}},
                 {"key": A.HTTP_STATUS, "value": {"intValue": "401" if is_err else "200"}},
                 {"key": A.KEY_FINGERPRINT, "value": {"stringValue": "fp-a"}}]
        if is_err:
            attrs += [{"key": A.SCOPE_ERROR, "value": {"boolValue": True}},
                      {"key": A.SCOPE_MISSING, "value": {"arrayValue": {"values": [{"stringValue": READ}]}}},
                      {"key": A.DIAGNOSIS, "value": {"stringValue": A.DIAGNOSIS_UNKNOWN}}]
        t = start + i * MS
        items.append({"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "GET " + RUNS, "kind": 3,
                      "startTimeUnixNano": str(t), "endTimeUnixNano": str(t + MS), "attributes": attrs})
    return dumps_line({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.instance.id", "value": {"stringValue": process}}]},
        "scopeSpans": [{"scope": {"name": "otel_openai_scopes"}, "spans": items}]}]}) + b"\n"


CONSOLE_OUTPUT = """{
    "name": "GET /v1/threads/{thread_id}/runs",
    "context": {
        "trace_id": "0x5b8aa5a2d2c872e8321cf37308d69df2",
        "span_id": "0x051581bf3cb55c13",
        "trace_state": "[]"
    },
    "kind": "SpanKind.CLIENT",
    "attributes": {"openai.scope_error": true}
}
"""


def report_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-openai-scopes"), "report", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.parametrize("content,why", [
    (CONSOLE_OUTPUT.encode(), "console-exporter output"),
    (bytes(range(256)) * 40, "binary data"),
    (_otlp_line(20)[:-400], "cut off (a truncated export)"),
    (b"", "the file is empty"),
    (b'{"hello": "world"}\n[1, 2]\n', "none is an OTLP export"),
    (b"\x28\xb5\x2f\xfd" + bytes(100), "zstd"),
    (b'{"resourceMetrics": [{"resource": {}}]}\n', "metrics/logs line(s) but no spans"),
])
def test_nothing_readable_exits_2_with_one_line_saying_why(tmp_path, content, why):
    f = tmp_path / "telemetry.jsonl"
    f.write_bytes(content)
    out = report_cli(str(f))
    assert out.returncode == EXIT_UNREADABLE == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "No missing-scope errors" not in out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report: nothing readable") and why in lines[0], lines


def test_spans_from_another_instrumentation_only_are_no_all_clear(tmp_path):
    line = json.loads(_otlp_line(3))
    for sp in line["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        sp["attributes"] = [{"key": "http.route", "value": {"stringValue": "/x"}}]
    f = tmp_path / "other.jsonl"
    f.write_bytes(dumps_line(line) + b"\n")
    out = report_cli(str(f), "--json")
    assert out.returncode == 2 and "no OpenAI call recorded by otel-openai-scopes" in out.stderr
    assert json.loads(out.stdout)["error"].startswith("read 3 spans")


def test_some_unreadable_lines_are_a_warning_with_counts(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(_otlp_line(10, error_every=3) + b"garbage\n" + b'{"resourceMetrics": []}\n' + b"{not json\n"
                  + _otlp_line(5, T0 + 20 * MS)[:-30])
    out = report_cli(str(f))
    assert out.returncode == EXIT_SCOPE_ERRORS == 1, out.stderr
    warning = [ln for ln in out.stderr.splitlines() if ln.startswith("warning:")]
    assert warning == [f"warning: 3 of 5 lines unreadable in {f} (2 not JSON, 1 last line cut off (export still "
                       "running, or the file was truncated)); 10 spans read from the rest"]
    assert "10 spans read from 1 file, 3 unreadable lines" in out.stdout


def test_reads_plain_and_gzip_collector_files_from_many_processes(tmp_path):
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"".join(_otlp_line(10, T0 + k * 10 * MS, error_every=4, process=f"pod-{k}")
                               for k in range(3)))
    zipped = tmp_path / "rotated.json.gz"  # the Collector file exporter's rotated, compressed output
    with gzip.open(zipped, "wb") as z:
        z.write(b"".join(_otlp_line(10, T0 + k * 10 * MS, error_every=4, process=f"pod-{k}") for k in range(3, 5)))
    analysis = analyze_files([plain, zipped])
    assert [(f.compression, f.spans, f.unreadable) for f in analysis.files] == [("", 30, 0), ("gzip", 20, 0)]
    assert set(analysis.processes) == {f"pod-{k}" for k in range(5)}
    assert len(analysis.windows) == 1 and len(analysis.windows[0].processes) == 5


def test_exit_0_when_nothing_is_found(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(_otlp_line(10))
    out = report_cli(str(f))
    assert out.returncode == EXIT_CLEAR == 0, out.stderr
    assert "No missing-scope errors in these 10 calls." in out.stdout


# ---- --json ----------------------------------------------------------------------------------------------
WINDOW_FIELDS = {"start", "end", "fingerprint", "hint", "organization", "project", "host", "passing_contexts",
                 "token_grants", "errors_grant_lacks_scope", "derived_clients",
                 "scopes", "diagnosis", "explanation", "diagnosis_history",
                 "process_diagnoses", "errors", "mutated_errors", "successes_same_key", "successes_other_processes",
                 "endpoints", "clients", "clients_failing", "processes_failing", "processes_seen", "request_ids"}


def test_json_schema_on_stdout(tmp_path):
    spans = [err(T0 + i * MS, rid=f"req_{i}", process=f"p{i % 3}", client=f"c{i % 3}", hint="sk-proj-...Ab12")
             for i in range(30)]
    spans += [call(T0 + i * MS + 1, process="p9", client="c9") for i in range(5)]
    doc = json.loads(json.dumps(to_json(analyze(spans))))
    assert doc["schema"] == "otel-openai-scopes/report/1" and doc["error"] is None
    assert doc["exit_code"] == 1 and doc["unreadable_lines"] == 0
    assert {"spans", "calls", "ok", "scope_errors", "keys", "clients", "processes", "windows", "start", "end",
            "bucket_seconds"} <= set(doc["totals"])
    (w,) = doc["windows"]
    assert set(w) == WINDOW_FIELDS
    assert w["start"] == "2027-01-15T08:00:00.000Z" and w["end"].endswith("Z")
    assert w["scopes"] == [READ] and w["hint"] == "sk-proj-...Ab12" and w["diagnosis"] == A.DIAGNOSIS_SCOPE_FLAPPING
    assert w["processes_failing"] == 3 and w["processes_seen"] == 4 and w["successes_other_processes"] == 5
    assert len(w["request_ids"]) == 10 and w["request_ids"][0] == "req_0"  # bounded
    assert {c["id"] for c in w["clients"]} == {"c0", "c1", "c2"} and w["clients"][0]["mutated"] == []
    assert w["diagnosis_history"][0]["diagnosis"] == A.DIAGNOSIS_UNKNOWN


def test_json_from_the_cli(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(_otlp_line(12, error_every=3))
    out = report_cli(str(f), "--json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["totals"]["scope_errors"] == 4 and doc["files"][0]["spans"] == 12


# ---- bounded memory --------------------------------------------------------------------------------------
def test_memory_depends_on_lanes_not_spans():
    """A day of traffic, 100k spans: every series stays within the grid's bucket bound."""
    grid_bound = 256

    def spans():
        rnd = random.Random(7)
        for i in range(100_000):
            t = T0 + i * 864 * MS  # 24 h
            if rnd.random() < 0.05:
                yield err(t, process=f"p{i % 20}", client=f"c{i % 40}")
            else:
                yield call(t, process=f"p{i % 20}", client=f"c{i % 40}")

    analysis = analyze(spans(), gap_seconds=1, max_buckets=grid_bound)
    series = analysis.grid._series
    assert analysis.calls == 100_000 and analysis.grid.buckets() <= grid_bound
    assert all(len(s.counts) <= grid_bound for s in series)
    # lanes: 20 processes x 3, 40 clients x 2, 1 key, (key, endpoint, process) x 20, one per window, and the
    # process and client lanes' errors of the one window key (to colour them by verdict)
    assert len(series) == 60 + 80 + 1 + 20 + len(analysis.windows) + 20 + 40


def test_grid_coarsening_keeps_every_count():
    g = Grid(max_buckets=8)
    s = g.new_series()
    times = [T0 + k * 37 * MS for k in range(500)]
    random.Random(3).shuffle(times)
    for t in times:
        s.add(g.index(t))
    assert s.sum() == 500 and g.buckets() <= 8 and len(s.counts) <= 8


# ---- the picture -----------------------------------------------------------------------------------------
def fleet(processes: int) -> list[SpanRecord]:
    """A flap seen by `processes` pods, one of which also has a mutated client; two keys."""
    spans = []
    rnd = random.Random(processes)
    for i in range(600):
        t = T0 + i * 100 * MS
        p = f"pod-{i % processes}"
        if 200 <= i < 400 and rnd.random() < 0.4:
            spans.append(err(t, process=p, client=f"{p}-c1", rid=f"req_{i}", hint="sk-proj-...Ab12",
                             diagnosis=A.DIAGNOSIS_SCOPE_FLAPPING if i > 210 else A.DIAGNOSIS_UNKNOWN))
        else:
            spans.append(call(t, process=p, client=f"{p}-c1", hint="sk-proj-...Ab12"))
        if i > 450 and i % 3 == 0:
            spans.append(err(t + 1, key="fp-tenant", process="pod-0", client="pod-0-c2", mutated=("api_key",),
                             diagnosis=A.DIAGNOSIS_CLIENT_MUTATED, hint="sk-proj-...Cd34", rid=f"req_t{i}"))
    return spans


def test_html_has_a_time_axis_series_per_key_verdict_colours_and_hover_text():
    analysis = analyze(fleet(3), gap_seconds=5)
    page = render_html(analysis)
    assert page.count('class="key-series"') == len(analysis.keys) == 2
    assert 'class="axis"' in page and "08:00:00" in page and "+0.0s" in page and "(UTC)" in page
    assert 'data-verdict="scope_flapping"' in page and 'data-verdict="client_mutated"' in page
    for d in A.DIAGNOSES:
        assert f"{d}: " in page  # the legend
    assert 'class="mutation"' in page and "mutated at 2027-01-15T08:00:45" in page
    assert "request ids: req_" in page and "scope errors, verdict scope_flapping" in page
    assert page.count('class="process-lane"') == 3


@pytest.mark.parametrize("processes", [1, 20])
def test_html_report_in_headless_chromium(tmp_path, processes):
    browser = chromium()
    analysis = analyze(fleet(processes), gap_seconds=5)
    page = tmp_path / "report.html"
    page.write_text(render_html(analysis))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{processes}-process{'es' if processes > 1 else ''}.png"
    if shot.exists():
        shot.unlink()
    flags = browser_flags(tmp_path, "1200,1600")
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []  # no console errors (nor any console output)
    # the page's script ran to its end and found one series per key; the axis has ticks with clock labels
    assert f'data-timeline-ready="{len(analysis.keys)}"' in dom.stdout
    assert dom.stdout.count('class="tick-label"') >= 4 and dom.stdout.count('class="key-series"') == 2
    assert dom.stdout.count('class="process-lane"') == processes
    pic = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert pic.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, pic.stderr[-2000:]


# ---- hostile files: never a traceback ---------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)
any_value = st.fixed_dictionaries({}, optional={"stringValue": json_values, "intValue": json_values,
                                                "boolValue": json_values, "arrayValue": json_values})
hostile_span = st.fixed_dictionaries({}, optional={
    "startTimeUnixNano": json_values | st.just("1800000000000000000"), "endTimeUnixNano": json_values,
    "name": json_values,
    "attributes": st.lists(st.fixed_dictionaries({"key": st.sampled_from(sorted(A.SPAN_ATTRIBUTES))},
                                                 optional={"value": any_value}), max_size=6)})
hostile_doc = st.fixed_dictionaries({"resourceSpans": st.lists(st.fixed_dictionaries({}, optional={
    "resource": json_values, "scopeSpans": st.lists(st.fixed_dictionaries({}, optional={
        "spans": st.lists(hostile_span, max_size=3)}), max_size=2)}), max_size=2)})


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_doc | json_values, max_size=4))
def test_any_json_lines_give_an_analysis_or_a_reason_never_an_exception(tmp_path_factory, docs):
    f = tmp_path_factory.mktemp("hostile") / "t.jsonl"
    f.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    analysis = analyze_files([f])
    stats = analysis.files[0]
    assert stats.spans + stats.unreadable + stats.other_signals <= stats.lines or stats.spans
    to_json(analysis)
    render_html(analysis)
    verdict_lines(analysis)


def test_a_line_with_a_bad_field_is_unreadable_not_half_read(tmp_path):
    doc = json.loads(_otlp_line(3))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["startTimeUnixNano"] = "soon"
    f = tmp_path / "t.jsonl"
    f.write_bytes(dumps_line(doc) + b"\n" + _otlp_line(2))
    analysis = analyze_files([f])
    assert analysis.spans == 2 and analysis.files[0].unreadable == 1
    assert "wrong type" in analysis.warnings[0]


def test_attributes_of_unexpected_types_are_text_not_a_crash():
    odd = call(T0, status=200)
    odd.attributes[A.TEMPLATE] = ["/v1/a", "/v1/b"]
    odd.attributes[A.CLIENT_ID] = {"x": 1}
    bad = err(T0 + 1)
    bad.attributes[A.SCOPE_MISSING] = READ  # a lone string where an array belongs
    bad.attributes[A.CLIENT_MUTATED] = "api_key"
    bad.attributes[A.HTTP_METHOD] = 7
    analysis = analyze([odd, bad])
    (w,) = analysis.windows
    assert w.scopes == (READ,) and w.mutated_fields == {"api_key": 1}
    assert to_json(analysis)["totals"]["calls"] == 2


# ---- one large file read by several processes: exactly the one-pass result ----------------------------------
def same_report(path: Path, workers: int, **kw: Any) -> None:
    from otel_openai_scopes.tools.report import parallel as P

    one = analyze_files([path], workers=1, **kw)
    many = analyze_files([path], workers=workers, parallel_min_bytes=0, **kw)
    assert to_json(many) == to_json(one)
    assert json.dumps(to_json(many)) == json.dumps(to_json(one))  # the same order too, not only the same content
    assert render_html(many) == render_html(one) and verdict_lines(many) == verdict_lines(one)
    return P._parallel(path, workers, kw.get("gap_seconds", 60.0), kw.get("max_buckets", 1024), 0)


mixed = st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(["fp-a", "fp-b", "fp-c"]),
                           st.sampled_from([200, 404, 500, 401, 401]), st.sampled_from(["p1", "p2", "p3", "p4"]),
                           st.integers(0, 2), st.booleans(), st.sampled_from([(READ,), ("api.threads.write",)])),
                 min_size=2, max_size=120)


@settings(max_examples=40, deadline=None)
@given(mixed, st.randoms(use_true_random=False), st.sampled_from([2, 3]), st.sampled_from([8, 64, 1024]))
def test_parallel_byte_ranges_give_exactly_the_one_pass_report(tmp_path_factory, data, rnd, workers, max_buckets):
    """Spans in any order (windows, lanes and time ranges straddling the cuts, grids of different widths in
    each part): every field of the JSON, its order, the HTML and the sentences are the same."""
    spans = []
    for t, k, status, p, c, mutated, missing in data:
        client = f"{p}-c{c}"
        hint = "" if k == "fp-c" and t % 2 else f"sk-proj-...{k[-1] * 4}"
        if status == 401:
            spans.append(err(T0 + t * MS * 7, key=k, process=p, client=client, missing=missing, hint=hint,
                             mutated=("api_key",) if mutated else (), rid=f"req_{t}_{p}",
                             diagnosis=rnd.choice(A.DIAGNOSES)))
        else:
            spans.append(call(T0 + t * MS * 7, key=k, status=status, process=p, client=client, hint=hint))
    rnd.shuffle(spans)
    path = tmp_path_factory.mktemp("par") / "fleet.jsonl"
    write_fleet_file(path, spans, rnd)
    state = same_report(path, workers, gap_seconds=rnd.choice([0.01, 0.5, 5.0]), max_buckets=max_buckets)
    if len(split_points(path, workers)) > 2:  # a line boundary to cut at
        assert state is not None  # really read in parallel, not the one-pass fallback


def test_parallel_on_a_fleet_file(tmp_path):
    """Five pods, a flap, a mutated client, 1,200 spans in time order: the ranges cover different halves of
    the day, so their grids start at different widths."""
    spans = fleet(5) * 2
    spans = [SpanRecord(s.name, s.start_ns + (i >= len(spans) // 2) * 3600 * 10**9 * 10, s.end_ns
                        + (i >= len(spans) // 2) * 3600 * 10**9 * 10, s.attributes, s.resource)
             for i, s in enumerate(spans)]
    path = tmp_path / "fleet.jsonl"
    write_fleet_file(path, spans, random.Random(3))
    assert same_report(path, 2, gap_seconds=5, max_buckets=256) is not None
    analysis = analyze_files([path], workers=2, parallel_min_bytes=0, gap_seconds=5)
    assert {w.diagnosis for w in analysis.windows} >= {A.DIAGNOSIS_SCOPE_FLAPPING, A.DIAGNOSIS_CLIENT_MUTATED}
    assert len(analysis.processes) == 5 and analysis.files[0].spans == len(spans)


def test_parallel_falls_back_to_one_pass_when_a_lane_cap_is_reached(tmp_path, monkeypatch):
    from otel_openai_scopes.tools.report import limits

    monkeypatch.setattr(limits, "MAX_CLIENT_LANES", 3)  # which clients become "(other)" depends on the order
    path = tmp_path / "fleet.jsonl"
    write_fleet_file(path, fleet(5), random.Random(4))
    assert same_report(path, 2, gap_seconds=5) is None
    assert limits.OTHER in analyze_files([path], workers=2, parallel_min_bytes=0).clients


def test_parallel_only_for_large_plain_files(tmp_path):
    from otel_openai_scopes.tools.report import parallel as P

    path = tmp_path / "fleet.jsonl"
    write_fleet_file(path, fleet(3), random.Random(5))
    gz = tmp_path / "fleet.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert P._parallel(path, 2, 60.0, 1024, path.stat().st_size + 1) is None
    assert P._parallel(gz, 2, 60.0, 1024, 0) is None
    assert P._parallel(path, 2, 60.0, 1024, path.stat().st_size) is not None


def test_parallel_read_is_not_chosen_by_default_in_a_threaded_process(tmp_path, monkeypatch):
    """A fork copies locks other threads hold: with threads running, the default is one pass."""
    from otel_openai_scopes.tools.report import parallel as P

    path = tmp_path / "t.jsonl"
    path.write_text("{}\n")
    calls: list[int] = []
    monkeypatch.setattr(P, "_parallel", lambda p, n, *a: calls.append(n))
    monkeypatch.setattr(P, "_cpus", lambda: 2)
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # the suite's own threads vary: pinned
    P.analyze_files([path], parallel_min_bytes=0)
    assert calls == []
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    P.analyze_files([path], parallel_min_bytes=0)
    assert calls == [2]
