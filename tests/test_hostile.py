"""Hostile input through the whole path (real SDK, real HTTP, fake server): error bodies of any bytes and any
JSON shape and size, odd URL paths, header values, credentials of any length and alphabet. Nothing raises
from the instrumentation, outputs are bounded, every text exported is valid Unicode, no credential reaches any
attribute, and one hostile value never costs an export batch."""

from __future__ import annotations

import json

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_openai_scopes import attributes as A
from otel_openai_scopes.redact import MAX_MESSAGE_CHARS, mask_credentials, mask_request_id, mask_value, safe_message
from otel_openai_scopes.safety import report_internal_error, reset_reported
from tests.support.keys import leaked_pieces, make_key
from tests.support.otlp import raw_spans
from tests.support.receiver import OtlpReceiver
from tests.support.sdk import http_module

CONTROL_KEY = make_key()
HYPO = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text with at least one lone surrogate (what an escaped "\ud800" in a JSON body decodes to) or control character
# (NUL, BEL, ESC, DEL, C1, a line separator) among any other characters.
LONE_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
CONTROLS = st.sampled_from("\x00\x07\x1b\x7f\x85\x9b\u2028")
HOSTILE_TEXT = st.builds(lambda a, bad, b: a + "".join(bad) + b, st.text(max_size=20),
                         st.lists(LONE_SURROGATES | CONTROLS, min_size=1, max_size=3), st.text(max_size=20))
HOSTILE_CHARS = st.one_of(st.characters(), LONE_SURROGATES, CONTROLS)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
                    | HOSTILE_TEXT,
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(HOSTILE_TEXT, c, max_size=5),
                    max_leaves=30)


def span_text(span) -> str:
    parts = [span.name, str(span.status.description)]
    parts += [f"{k}={v}" for k, v in span.attributes.items()]
    for e in span.events:
        parts += [e.name] + [f"{k}={v}" for k, v in e.attributes.items()]
    return "\n".join(parts)


def check_valid_text(span) -> None:
    """Every string the span exports encodes as UTF-8 (the OTLP encoder and the file exporter need it)."""
    texts = [span.name, span.status.description or ""]
    for attributes in [span.attributes, *(e.attributes for e in span.events)]:
        for k, v in attributes.items():
            texts += [k, *(v if isinstance(v, tuple) else [v])]
    texts += [e.name for e in span.events]
    for text in texts:
        if isinstance(text, str):
            text.encode("utf-8")


def check_bounded(span) -> None:
    check_valid_text(span)
    assert len(span.status.description or "") <= MAX_MESSAGE_CHARS
    for k, v in span.attributes.items():
        assert k in A.SPAN_ATTRIBUTES, k
        if isinstance(v, str):
            assert len(v) <= 4096, k
        elif isinstance(v, tuple):
            assert len(v) <= 16, k


@HYPO
@given(body=st.one_of(st.binary(max_size=3000), JSON.map(json.dumps),
                      st.builds(lambda m: json.dumps({"error": {"message": m, "code": m}}),
                                st.text(max_size=500) | HOSTILE_TEXT)),
       status=st.sampled_from([400, 401, 403, 404, 409, 422]))
def test_any_error_body(client, fake, telemetry, body, status):
    telemetry.exporter.clear()
    fake.script("GET", "/models", status, body, content_type="application/json")
    with pytest.raises(openai.APIStatusError) as info:
        client.with_options(max_retries=0).models.list()  # 409 is retried by default
    assert info.value.status_code == status
    span = telemetry.only_span()
    check_bounded(span)
    assert span.attributes[A.HTTP_STATUS] == status


@HYPO
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="?#%\\"),
                    max_size=300))
def test_any_url_path(client, telemetry, path):
    telemetry.exporter.clear()
    try:
        client.get("/" + path, cast_to=object)
    except Exception as exc:  # noqa: BLE001 - the SDK's own errors (httpx rejects "//::" as a URL, say)
        assert not type(exc).__module__.startswith("otel_openai_scopes")
    for span in telemetry.spans():
        check_bounded(span)
        assert span.attributes[A.TEMPLATE].startswith("/")


@HYPO
@given(org=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200) | HOSTILE_TEXT,
       project=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200) | HOSTILE_TEXT)
def test_any_header_values(fake, key, instrumentor, telemetry, org, project):
    telemetry.exporter.clear()
    c = openai.OpenAI(api_key=key, base_url=fake.base_url, organization=org or None, project=project or None,
                      max_retries=0)
    try:
        c.models.list()
    except (openai.APIStatusError, openai.APIConnectionError, ValueError):
        pass
    for span in telemetry.spans():
        check_bounded(span)


@HYPO
@given(key=st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300),
    st.builds(lambda n, p: make_key(p, n), st.integers(0, 400), st.sampled_from(["sk-", "sk-proj-", "", "eyJ"])),
))
def test_any_credential(fake, instrumentor, telemetry, key):
    telemetry.exporter.clear()
    c = openai.OpenAI(api_key=key or "x", base_url=fake.base_url, max_retries=0)
    raised = None
    try:
        c.models.list()
    except Exception as exc:  # noqa: BLE001 - whatever the SDK/httpx does with such a key
        raised = exc
    assert raised is None or not type(raised).__module__.startswith("otel_openai_scopes")
    spans = telemetry.spans()
    # The same call with an unrelated key: text that appears there too ("api.model.read", the template,
    # header names) is the telemetry's own vocabulary, not a piece of this key.
    telemetry.exporter.clear()
    try:
        openai.OpenAI(api_key=CONTROL_KEY, base_url=fake.base_url, max_retries=0).models.list()
    except openai.APIStatusError:
        pass
    control = "\n".join(span_text(s) for s in telemetry.spans())
    for span in spans:
        check_bounded(span)
        if len(set(key)) >= 10:  # low-entropy keys ("0000...") match ids and hex by chance; nothing to learn
            assert [p for p in leaked_pieces(key, span_text(span)) if p not in control] == []


# ---- Text that enters a span is valid Unicode; one hostile body never costs a batch (issue 16, item 5) -----
@HYPO
@given(text=st.text(HOSTILE_CHARS, max_size=300) | HOSTILE_TEXT, cut=st.integers(0, 300))
def test_the_masking_gate_returns_valid_text_and_still_masks(text, cut):
    """redact's functions are the gate every outside value passes on its way to telemetry: whatever they are
    given, what they return is valid Unicode (one-line values without control characters) and holds no piece of
    the credential."""
    key = CONTROL_KEY
    hostile = text[:cut] + key + text[cut:]
    one_line = [safe_message(hostile, key), mask_value(hostile, key), mask_request_id(text, key),
                safe_message(text), mask_value(text)]
    for out in [*one_line, mask_credentials(hostile, key), mask_credentials(text)]:
        out.encode("utf-8")
    for out in one_line:
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in out), repr(out)
    assert leaked_pieces(key, safe_message(hostile, key) + mask_value(hostile, key, limit=512)) == []


def test_an_internal_error_log_line_is_valid_text_and_masked(caplog):
    class Hostile(Exception):
        def __str__(self):
            return f"boom \ud800\x1b[2J {CONTROL_KEY}"

    reset_reported()
    try:  # raised in a file whose path is not UTF-8 (os.fsdecode gives it lone surrogates)
        exec(compile("raise Hostile()", "/srv/app\udcff/main.py", "exec"), {"Hostile": Hostile})
    except Hostile as exc:
        report_internal_error("test.where\udc80", exc)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes"]
    line.encode("utf-8")
    assert "\x1b" not in line and leaked_pieces(CONTROL_KEY, line) == []

# Each body answers ``beta.threads.runs.list`` with a 401; the ones that name a scope must still give the scope.
HOSTILE_BODIES = {
    "escaped lone surrogates": b'{"error":{"message":"You have insufficient permissions \\ud800 for this operation. '
                               b'Missing scopes: api.threads.read. \\udfff","type":"invalid_request_error\\udc00",'
                               b'"code":"missing\\ud800scope"}}',
    "surrogate bytes (CESU-8)": b'{"error":{"message":"bad \xed\xa0\x80 bytes. Missing scopes: api.threads.read.",'
                                b'"type":"t\xed\xbf\xbf","code":null}}',
    "invalid UTF-8 in JSON": b'{"error":{"message":"bad \xff\xfe\xc3 bytes. Missing scopes: api.threads.read.",'
                             b'"code":"c\xff"}}',
    "invalid UTF-8, not JSON": b"<html>\xff\xfe \x00\x1b[2J Missing scopes: api.threads.read.</html>",
    "NULs and controls": b'{"error":{"message":"a\\u0000b\\u001b]52;c;eA==\\u0007 Missing scopes: api.threads.read.",'
                         b'"code":"x\\u0000y","type":"\\u0085\\u009b"}}',
    "a message of lists and maps": b'{"error":{"message":["\\ud800",{"k":"\\udc00"}],"code":1}}',
}
HOSTILE_HEADERS = {"x-request-id": "req_\xff\xfe", "openai-organization": "org-\xe9\xff", "openai-project": "\x85"}


# Two values reach spans without passing redact's gate: the client's origin (a source path) and the key's hint.
# Not valid Unicode, either would be one attribute the OTLP encoder drops with a traceback: both are valid text.
def test_a_client_built_in_a_file_whose_path_is_not_utf8_has_a_valid_origin(fake, key, instrumentor, telemetry):
    namespace = {"openai": openai, "K": key, "B": fake.base_url}
    exec(compile("c = openai.OpenAI(api_key=K, base_url=B, max_retries=0)", "/srv/app\udcff/main.py", "exec"),
         namespace)
    namespace["c"].models.list()
    span = telemetry.only_span()
    check_valid_text(span)
    assert span.attributes[A.CLIENT_ORIGIN].startswith("/srv/app\ufffd/main.py:")


def test_a_key_that_is_not_valid_text_gives_a_valid_hint(fake, instrumentor, telemetry):
    key = make_key() + "\udcff"  # os.environ's value of an OPENAI_API_KEY whose last byte is not UTF-8
    with pytest.raises(UnicodeError):  # the SDK cannot send it; the span still describes the call
        openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0).models.list()
    span = telemetry.only_span()
    check_valid_text(span)


def _hostile_calls(fake, key) -> int:
    """Every way outside text reaches a span, each hostile, between clean calls; returns the number of calls."""
    http = http_module()
    c = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    calls = 0

    def call(fn):
        nonlocal calls
        calls += 1
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - whatever the SDK raises for a hostile answer
            assert not type(exc).__module__.startswith("otel_openai_scopes")

    call(c.models.list)  # clean success
    call(lambda: c.beta.threads.runs.list("thread_1"))  # clean scope error: the evidence that must arrive
    for body in HOSTILE_BODIES.values():  # error bodies
        fake.script("GET", "/threads/thread_1/runs", 401, body)
        call(lambda: c.beta.threads.runs.list("thread_1"))
    fake.script("GET", "/models", 401, b"{}", headers=HOSTILE_HEADERS)  # response headers
    call(c.models.list)
    # The same headers on a retried attempt (the attempt events carry each attempt's request id).
    fake.script("GET", "/models", 429, b"{}", headers={**HOSTILE_HEADERS, "retry-after-ms": "1"})
    call(c.with_options(max_retries=1).models.list)
    call(lambda: c.get("/models/\ud800\x00x", cast_to=object))  # a URL path (the SDK cannot send it)
    # SDK objects: organization and project options that are not valid text (an environment value that is not
    # UTF-8 decodes to lone surrogates); the SDK cannot send them, the span still describes the call.
    call(openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0, organization="org-\udcff",
                       project="proj_\ud800\x00").models.list)

    class Hostile(Exception):
        def __str__(self):
            return f"transport failed \udc80 \x1b[2J {key}"

    class Failing(http.BaseTransport):
        def handle_request(self, request):
            raise Hostile()

    # Exception messages: a transport's own exception, carrying the key too.
    call(openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0,
                       http_client=openai.DefaultHttpxClient(transport=Failing())).models.list)
    call(c.models.list)  # clean success after all of it
    return calls


def _encoder_complaints(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry.exporter")]


def _run_through(tmp_path, fake, extra_exporter):
    """The calls above with the real SDK: one batch to the file exporter and one to ``extra_exporter``."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_openai_scopes import OpenAIScopesInstrumentor
    from otel_openai_scopes.exporter import OpenAIScopesFileSpanExporter

    key = make_key()
    fake.grant(key, scopes=["api.model.read", "model.read", "model.request"])  # all but api.threads.read
    path = tmp_path / "spans.jsonl"
    tp = TracerProvider()
    for exporter in (OpenAIScopesFileSpanExporter(path), extra_exporter):  # one export each: a single batch
        tp.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000, max_export_batch_size=512))
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=MeterProvider())
    try:
        calls = _hostile_calls(fake, key)
    finally:
        inst.uninstrument()
    assert tp.force_flush(60_000)
    tp.shutdown()
    return key, path, calls


def _check_file(path, key, calls) -> None:
    from otel_openai_scopes.tools.otlp_json import read_spans

    raw = path.read_bytes()
    assert raw.count(b"\n") == 1  # one batch, written whole
    text = raw.decode("utf-8")  # strict
    assert leaked_pieces(key, text) == []
    spans = list(read_spans([path]))
    assert len(spans) == calls
    scope_errors = [s for s in spans if s.attributes.get(A.SCOPE_MISSING) == ["api.threads.read"]]
    assert len(scope_errors) == 1 + sum(b"Missing scopes" in b for b in HOSTILE_BODIES.values())
    doc = json.loads(text)
    messages = [sp["status"].get("message", "") for sp in raw_spans(doc)]
    assert any("\ufffd" in m for m in messages)  # repaired at the source, not dropped


def _check_otlp(spans, key, calls) -> None:
    assert len(spans) == calls
    names = [s.name for s in spans]
    assert names.count("GET /v1/threads/{thread_id}/runs") == 1 + len(HOSTILE_BODIES)
    missing = [s for s in spans if any(kv.key == A.SCOPE_MISSING for kv in s.attributes)]
    assert len(missing) == 1 + sum(b"Missing scopes" in b for b in HOSTILE_BODIES.values())
    everything = "\n".join(str(s) for s in spans)
    assert leaked_pieces(key, everything) == []
    attempts = [{kv.key: kv.value.string_value for kv in e.attributes} for s in spans for e in s.events
                if e.name == A.EVENT_ATTEMPT]
    assert [a.get(A.REQUEST_ID) for a in attempts][:1] == ["req_\xff\xfe"]  # the retried call's first attempt
    for s in spans:  # no control character reached a status message or a header value
        values = [kv.value.string_value for kv in s.attributes] + [s.status.message]
        assert not any(ch in v for v in values for ch in "\x00\x1b\x07\x85\x9b"), s


def test_hostile_text_never_costs_a_batch_file_and_otlp_http(fake, tmp_path, caplog):
    """Every span of the batch arrives through the file exporter and the real OTLP/HTTP protobuf exporter, the
    scope-error evidence included, and the OTLP encoder drops no attribute (it logs each one it drops)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    with OtlpReceiver() as receiver:
        key, path, calls = _run_through(tmp_path, fake, OTLPSpanExporter(endpoint=receiver.traces_url, timeout=30))
    _check_file(path, key, calls)
    _check_otlp(receiver.spans, key, calls)
    assert _encoder_complaints(caplog) == []


def test_hostile_text_never_costs_a_batch_real_collector_grpc(fake, tmp_path, caplog):
    """The same through the real OTLP gRPC exporter into the real Collector, written by its file exporter."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from otel_openai_scopes.tools.otlp_json import read_spans
    from tests.support.stack import Collector, require_binaries, wait_until

    bins = require_binaries("otelcol")
    received = tmp_path / "collector.jsonl"
    config = tmp_path / "collector.yaml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "receivers": {"otlp": {"protocols": {"grpc": {}}}},
        "exporters": {"file": {"path": str(received), "format": "json", "flush_interval": "100ms"}},
        "extensions": {"health_check": {}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }))
    with Collector.start(bins, tmp_path / "otelcol", [config]) as col:
        key, path, calls = _run_through(tmp_path, fake, OTLPSpanExporter(endpoint=col.otlp_grpc, insecure=True,
                                                                         timeout=30))
        wait_until(lambda: received.exists() and len(list(read_spans([received]))) >= calls, timeout=60,
                   what="the Collector's file holds every span")
    _check_file(path, key, calls)
    spans = list(read_spans([received]))
    assert len(spans) == calls
    assert len([s for s in spans if s.attributes.get(A.SCOPE_MISSING) == ["api.threads.read"]]) == \
        1 + sum(b"Missing scopes" in b for b in HOSTILE_BODIES.values())
    assert leaked_pieces(key, received.read_text(encoding="utf-8")) == []
    assert _encoder_complaints(caplog) == []
