"""Masking (issue 11, findings 2, 3, 4): one mechanism that can only remove more.

Property tests: random keys of every kind and length; messages embedding random slices (8 characters or
more) at random places, in JSON fields, scope lists and response headers. No 8-character window of the key
(outside its documented type prefix) survives, and a fingerprint or hint next to it is never masked.
"""

from __future__ import annotations

import json
import string

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_openai_scopes import attributes as A
from otel_openai_scopes.fingerprint import describe
from otel_openai_scopes.redact import mask_credentials, safe_message
from otel_openai_scopes.scope_errors import parse_error, parse_missing_scopes
from tests.support.keys import WINDOW, leaked_pieces

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def _body(alphabet: str, lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=lo, max_size=hi)


KEYS = st.one_of(
    st.builds(lambda b: "sk-proj-" + b, _body(B64URL, 12, 164)),
    st.builds(lambda b: "sk-svcacct-" + b, _body(B64URL, 12, 120)),
    st.builds(lambda b: "sk-admin-" + b, _body(B64URL, 12, 80)),
    st.builds(lambda b: "sk-" + b, _body(ALNUM, 5, 60)),  # legacy user keys, also short ones
    _body("0123456789abcdef", 32, 32),  # Azure
    st.builds(lambda a, b, c: f"eyJ{a}.{b}.{c}", _body(B64URL, 8, 60), _body(B64URL, 8, 200), _body(B64URL, 8, 60)),
    _body(B64URL, 8, 100),  # anything else a gateway accepts
)
FILLER = st.text(alphabet=string.printable, max_size=80)


@st.composite
def key_and_message(draw):
    key = draw(KEYS)
    parts = [draw(FILLER)]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(key) - WINDOW))
        j = draw(st.integers(i + WINDOW, len(key)))
        parts.append(key[i:j])
        parts.append(draw(FILLER))
    return key, "".join(parts)


def test_the_leak_check_detects_a_leak():
    key = "sk-proj-" + "AbCdEfGh12" * 4
    assert leaked_pieces(key, "x" + key[11:19] + "y") and not leaked_pieces(key, "sk-proj-...h12")


@settings(max_examples=400, deadline=None)
@given(key_and_message())
def test_no_window_of_the_key_survives_in_a_message(km):
    key, message = km
    assert leaked_pieces(key, mask_credentials(message, key)) == []
    assert leaked_pieces(key, safe_message(message, key, limit=10_000)) == []


@settings(max_examples=300, deadline=None)
@given(key_and_message(), st.sampled_from(["message", "code", "type"]))
def test_no_window_of_the_key_survives_in_json_fields(km, field):
    key, text = km
    err = {"message": "Missing scopes: api.threads.read.", "type": "invalid_request_error", "code": "missing_scope"}
    err[field] = text if field == "message" else text[:60]
    for body in ({"error": err}, json.dumps({"error": err})):
        info = parse_error(401, body, key)
        out = " ".join([info.message, info.code, info.type, *info.missing_scopes])
        assert leaked_pieces(key, out) == []


@settings(max_examples=300, deadline=None)
@given(KEYS, FILLER)
def test_masking_only_removes_more_with_the_key_than_without(key, filler):
    """Finding 3: the sent key's first 8 characters were replaced first, so the sk- pattern stopped matching."""
    for text in (f"Bearer {key}", f"{filler} {key} {filler}", f"Incorrect API key provided: {key}."):
        without, with_key = mask_credentials(text), mask_credentials(text, key)
        assert leaked_pieces(key, with_key) == []
        assert len(with_key) <= len(without) + 3 * with_key.count("***")
        assert set(leaked_pieces(key, with_key)) <= set(leaked_pieces(key, without))


@settings(max_examples=300, deadline=None)
@given(key_and_message())
def test_a_fingerprint_or_hint_is_never_masked(km):
    key, message = km
    cred = describe(key)
    text = f"{message} (hint {cred.hint}, fingerprint {cred.fingerprint}) {message}"
    masked = mask_credentials(text, key)
    assert f"(hint {cred.hint}, fingerprint {cred.fingerprint})" in masked


@settings(max_examples=200, deadline=None)
@given(key_and_message())
def test_scopes_never_carry_a_key(km):
    key, text = km
    scopes = parse_missing_scopes(f"Missing scopes: api.model.read, {text}, model.request", key)
    assert leaked_pieces(key, " ".join(scopes)) == []
    assert scopes[:1] == ("api.model.read",)


# --- the findings, one example each (these fail on the code before issue 11) -----------------------

KEY = "sk-proj-" + "Xq7Lm2Pz9Rt4Vb8Nc1Kd6Hs3Jf5Wg0Ya7Ue2Io9Mn4Bv"


def test_finding_3_bearer_with_the_sent_key_masks_the_whole_key():
    assert leaked_pieces(KEY, mask_credentials(f"Bearer {KEY}", KEY)) == []
    # was "Bearer ***" + 32 characters of it
    assert leaked_pieces(KEY, mask_credentials(f"Bearer {KEY[:40]}", KEY)) == []
    assert leaked_pieces(KEY, mask_credentials(f"rejected {KEY[12:40]} here", KEY)) == []
    azure = "0123456789abcdef" + "fedcba9876543210"
    assert leaked_pieces(azure, mask_credentials(f"key {azure[4:28]} not valid", azure)) == []
    assert leaked_pieces(azure, mask_credentials(f"key {azure} not valid")) == []  # generic: long hex


def test_finding_2_words_and_keys_are_not_scopes():
    body = {"error": {"message": f"Missing scopes: api.model.read (upstream key {KEY})", "code": "missing_scope"}}
    info = parse_error(401, body, KEY)
    assert info.missing_scopes == ("api.model.read",)
    assert parse_missing_scopes("Missing scopes: api.threads.read, model.request, vector_store.write.") == (
        "api.threads.read", "model.request", "vector_store.write")
    assert parse_missing_scopes("Missing scopes: Foo.Bar, api.x") == ()
    assert parse_missing_scopes("Missing scopes: " + "a." * 40 + "b") == ()  # too long a name


def test_finding_4_codes_are_masked_by_pieces_of_the_sent_key():
    info = parse_error(401, {"error": {"message": "no", "code": KEY[10:30], "type": KEY[20:44]}}, KEY)
    assert leaked_pieces(KEY, info.code + info.type) == []


# --- end to end: headers a proxy echoes ----------------------------------------------------------

HEADER_KEYS = st.one_of(
    st.builds(lambda b: "sk-proj-" + b, _body(ALNUM, 20, 80)),
    _body("0123456789abcdef", 32, 32),
    _body(ALNUM, 12, 60),
)


@st.composite
def key_and_header(draw):
    key = draw(HEADER_KEYS)
    i = draw(st.integers(0, len(key) - WINDOW))
    j = draw(st.integers(i + WINDOW, len(key)))
    pad = st.text(alphabet=ALNUM + "-_.", max_size=20)
    return key, draw(pad) + key[i:j] + draw(pad)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kh=key_and_header(), header=st.sampled_from(["x-request-id", "openai-organization", "openai-project"]))
def test_no_window_of_the_key_survives_in_response_headers(fake, instrumentor, telemetry, kh, header):
    key, value = kh
    fake.keys.clear()
    fake.grant(key)
    telemetry.exporter.clear()
    fake.script("GET", "/models", 200, {"object": "list", "data": []}, headers={header: value})
    openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0).models.list()
    (span,) = telemetry.spans()
    exported = json.dumps({k: str(v) for k, v in span.attributes.items()})
    assert leaked_pieces(key, exported) == []
    assert span.attributes[A.KEY_HINT] == describe(key).hint


def test_finding_4_a_key_passed_as_organization_is_masked(fake, instrumentor, telemetry):
    fake.grant(KEY)
    openai.OpenAI(api_key=KEY, base_url=fake.base_url, organization=KEY, project="proj_" + KEY[8:30],
                  max_retries=0).models.list()
    a = dict(telemetry.only_span().attributes)
    assert leaked_pieces(KEY, a[A.ORGANIZATION] + a[A.PROJECT]) == []
    assert a[A.PROJECT].startswith("proj_")


def test_finding_4_a_proxy_echoing_the_key_in_headers(fake, instrumentor, telemetry):
    fake.grant(KEY)
    fake.script("GET", "/models", 401, {"error": {"message": f"Missing scopes: api.model.read (key {KEY[9:41]})"}},
                headers={"x-request-id": "req_" + KEY[8:40], "openai-organization": KEY[10:50]})
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0).models.list()
    span = telemetry.only_span()
    exported = json.dumps({k: str(v) for k, v in span.attributes.items()}) + span.status.description
    assert leaked_pieces(KEY, exported) == []
    assert span.attributes[A.SCOPE_MISSING] == ("api.model.read",)
    assert span.attributes[A.REQUEST_ID].startswith("req_")


# --- issue 16 (2): every credential the request carried, wherever it was sent -----------------------
# A hostile gateway on loopback that quotes the request back: its 404 quotes the URL with the query, its 401 every
# header it was sent, and it echoes a credential header into x-request-id and openai-organization.

class _Gateway:
    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if "/quote-url" in self.path:
                    status, message, echo = 404, f"Invalid URL (GET {self.path})", ""
                else:
                    quoted = "; ".join(f"header {k}: {v}" for k, v in self.headers.items()
                                       if not k.lower().startswith("x-stainless"))  # within the 512-character bound
                    status, message = 401, f"Gateway refused the request ({quoted}). Missing scopes: api.model.read."
                    echo = next((v for k, v in self.headers.items() if k.lower() == gateway.echo), "")
                body = json.dumps({"error": {"message": message, "type": "gateway_error",
                                             "code": "missing_scope"}}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if echo:
                    self.send_header("x-request-id", "req_" + echo)
                    self.send_header("openai-organization", echo)
                self.end_headers()
                self.wfile.write(body)

        self.echo = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def gateway():
    g = _Gateway()
    yield g
    g.close()


def exported_text(telemetry, records=()) -> str:
    """Every byte the call exported: span names, attributes, status, events, metric points, log records."""
    parts = []
    for span in telemetry.spans():
        parts += [span.name, json.dumps({k: str(v) for k, v in span.attributes.items()}),
                  span.status.description or ""]
        parts += [json.dumps({k: str(v) for k, v in ev.attributes.items()}) for ev in span.events]
    for name in (A.METRIC_REQUESTS, A.METRIC_DURATION, A.METRIC_SCOPE_ERRORS):
        parts += [json.dumps({k: str(v) for k, v in p.attributes.items()}) for p in telemetry.metric_points(name)]
    parts += [r.getMessage() + json.dumps({k: str(v) for k, v in vars(r).items()}) for r in records]
    return "\n".join(parts)


# Token-like values: every 8 characters hold an upper-case letter, a lower-case letter and a digit, so that a
# window found in the export is the value's and not a word of the contract (hypothesis finds "ai.key.f" otherwise).
_TRIPLE = st.permutations([st.sampled_from(string.ascii_uppercase), st.sampled_from(string.ascii_lowercase),
                           st.sampled_from(string.digits)]).flatmap(lambda p: st.tuples(*p)).map("".join)
GATEWAY_VALUES = st.lists(st.tuples(_TRIPLE, st.sampled_from(["", "-", "_", "~"])), min_size=4, max_size=20).map(
    lambda parts: "".join(t + sep for t, sep in parts).strip("-_~"))
HEADER_NAMES = st.sampled_from(["X-Gateway-Key", "x-api-key", "X-Auth-Token", "X-Api-Secret", "gw-signature",
                                "X-Session", "Proxy-Authorization", "X-Password", "Cookie", "x-jwt"])
QUERY_NAMES = st.sampled_from(["key", "api_key", "token", "access_token", "sig", "signature", "secret", "auth",
                               "password", "gw_token", "subscription-key"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=GATEWAY_VALUES, name=st.one_of(HEADER_NAMES.map(lambda n: ("header", n)),
                                            QUERY_NAMES.map(lambda n: ("query", n))),
       on_client=st.booleans(), quote_url=st.booleans())
def test_no_window_of_a_gateway_credential_survives(gateway, instrumentor, telemetry, caplog, value, name, on_client,
                                                    quote_url):
    """A credential in a header or query parameter named like one: the gateway quotes it back in its error body
    (404: the URL; 401: the headers), x-request-id and openai-organization; nothing exported keeps 8 characters
    of it, on either SDK."""
    from tests.support.keys import make_key

    where, param = name
    key = make_key()
    telemetry.exporter.clear()
    caplog.clear()
    gateway.echo = param.lower() if where == "header" else ""
    extra = {"default_headers" if where == "header" else "default_query": {param: value}}
    c = openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{gateway.port}/v1", max_retries=0,
                      **(extra if on_client else {}))
    per_call = {} if on_client else {"extra_headers" if where == "header" else "extra_query": {param: value}}
    with pytest.raises(openai.APIStatusError):
        if quote_url:
            c.get("/quote-url", cast_to=object, options=per_call)
        else:
            c.models.list(**per_call)
    out = exported_text(telemetry, caplog.records)
    assert leaked_pieces(value, out) == [] and leaked_pieces(key, out) == []
    span = telemetry.only_span()
    assert ("Invalid URL" if quote_url else "Gateway refused") in span.status.description
    if not quote_url:
        assert span.attributes[A.SCOPE_MISSING] == ("api.model.read",)


def test_a_gateway_404_quoting_the_url_and_a_401_quoting_the_gateway_key(gateway, instrumentor, telemetry):
    token, gw_key = "gwq" + "Zt4Rm8Kp2Lx6Vn9Qb3Jd7Hs1" * 2, "gwk" + "Ub5Ew9Ty3Oa7Ni1Sc6Fg0Ml4" * 2
    gateway.echo = "x-gateway-key"
    c = openai.OpenAI(api_key=KEY, base_url=f"http://127.0.0.1:{gateway.port}/v1", max_retries=0,
                      default_query={"key": token}, default_headers={"X-Gateway-Key": gw_key})
    with pytest.raises(openai.NotFoundError):
        c.get("/quote-url/things", cast_to=object)
    with pytest.raises(openai.AuthenticationError):
        c.models.list()
    quoted_url, quoted_headers = telemetry.spans()
    assert "Invalid URL (GET /v1/quote-url/things?key=***)" in quoted_url.status.description
    assert "X-Gateway-Key: ***" in quoted_headers.status.description or \
        "x-gateway-key: ***" in quoted_headers.status.description.lower()
    ids = quoted_headers.attributes[A.REQUEST_ID] + quoted_headers.attributes[A.RESPONSE_ORGANIZATION]
    assert leaked_pieces(gw_key, ids) == []
    out = exported_text(telemetry)
    assert leaked_pieces(token, out) == [] and leaked_pieces(gw_key, out) == [] and leaked_pieces(KEY, out) == []
