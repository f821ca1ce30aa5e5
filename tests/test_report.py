"""report.analyze on synthetic spans: the per-window success count against a brute-force count."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_openai_scopes import attributes as A
from otel_openai_scopes.tools.otlp_json import SpanRecord
from otel_openai_scopes.tools.report import analyze

KEYS = ["fp-a", "fp-b", None]


def _span(start: int, key: str | None, status: int, scope_error: bool) -> SpanRecord:
    attrs = {A.TEMPLATE: "/v1/threads/{thread_id}/runs", A.HTTP_METHOD: "GET", A.HTTP_STATUS: status}
    if key is not None:
        attrs[A.KEY_FINGERPRINT] = key
    if scope_error:
        attrs.update({A.SCOPE_ERROR: True, A.SCOPE_MISSING: ["api.threads.read"],
                      A.DIAGNOSIS: A.DIAGNOSIS_SCOPE_FLAPPING, A.CLIENT_ID: "c-1"})
    return SpanRecord(name="GET /v1/threads/{thread_id}/runs", start_ns=start, end_ns=start + 5,
                      attributes=attrs, resource={"process.pid": 1})


# Starts on a 5 ns grid and 5 ns spans: ok calls often start exactly at a window's first or last edge.
calls = st.lists(st.tuples(st.integers(0, 40).map(lambda i: i * 5), st.sampled_from(KEYS), st.sampled_from([200, 201, 302, 401, 404, 500])),
                 max_size=60)


@settings(max_examples=200, deadline=None)
@given(calls)
def test_successes_same_key_counts_ok_calls_of_the_key_inside_each_window(rows):
    spans = [_span(t, k, status, status == 401) for t, k, status in rows]
    analysis = analyze(spans, gap_seconds=20e-9)
    for w in analysis.windows:
        expected = sum(1 for s in spans
                       if 200 <= s.attributes[A.HTTP_STATUS] < 400
                       and w.start_ns <= s.start_ns <= w.end_ns
                       and s.attributes.get(A.KEY_FINGERPRINT) == w.fingerprint)
        assert w.successes_same_key == expected
    assert sum(w.errors for w in analysis.windows) == sum(1 for _, _, status in rows if status == 401)
