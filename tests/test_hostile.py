"""Hostile input through the whole path (real SDK, real HTTP, fake server): error bodies of any bytes and any
JSON shape and size, odd URL paths, header values, credentials of any length and alphabet. Nothing raises
from the instrumentation, outputs are bounded, and no credential reaches any attribute."""

from __future__ import annotations

import json

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_openai_scopes import attributes as A
from otel_openai_scopes.redact import MAX_MESSAGE_CHARS

from conftest import make_key
from test_leaks import leaked_pieces

CONTROL_KEY = make_key()
HYPO = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=10), c, max_size=5),
                    max_leaves=30)


def span_text(span) -> str:
    parts = [span.name, str(span.status.description)]
    parts += [f"{k}={v}" for k, v in span.attributes.items()]
    for e in span.events:
        parts += [e.name] + [f"{k}={v}" for k, v in e.attributes.items()]
    return "\n".join(parts)


def check_bounded(span) -> None:
    assert len(span.status.description or "") <= MAX_MESSAGE_CHARS
    for k, v in span.attributes.items():
        assert k in A.SPAN_ATTRIBUTES, k
        if isinstance(v, str):
            assert len(v) <= 4096, k
        elif isinstance(v, tuple):
            assert len(v) <= 16, k


@HYPO
@given(body=st.one_of(st.binary(max_size=3000), JSON.map(json.dumps),
                      st.builds(lambda m: json.dumps({"error": {"message": m, "code": m}}), st.text(max_size=500))),
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
@given(org=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
       project=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200))
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
