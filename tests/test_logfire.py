"""Under Pydantic Logfire's SDK with its default scrubbing (issue 16, item 10): the key fingerprint, hint and kind
survive on spans and events for every kind; exactly the documented values are scrubbed (README "Using Logfire");
with ``otel_openai_scopes.logfire_scrubbing.scrubbing_callback`` nothing of ours is.

Each run is an app in its own process (Logfire configures the global providers) calling the fake server: once
with a plain SDK TracerProvider (the values as written), once under Logfire's defaults, once with the callback.
Logfire runs offline: ``send_to_logfire=False``, spans read from an in-memory exporter it feeds.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest

from otel_openai_scopes import attributes as A
from tests.support.keys import make_key

# logfire 5.x needs Python >= 3.10; 4.33, the last release for 3.9, has the same default patterns minus a few
# token names. Both are in the `test` extra, each where it installs.
logfire = pytest.importorskip("logfire", reason="logfire is not installed (pip install -e '.[test]')")

SCRUBBED = "[Scrubbed due to "
KEY_ATTRIBUTES = (A.KEY_FINGERPRINT, A.KEY_HINT, A.KEY_KIND)

APP = textwrap.dedent("""
    import json, logging, os, sys

    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_openai_scopes import attributes as A

    mode = sys.argv[1]
    exporter = InMemorySpanExporter()
    if mode == "plain":
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    else:
        import logfire

        options = {}
        if mode == "callback":
            from otel_openai_scopes.logfire_scrubbing import scrubbing_callback

            options["scrubbing"] = logfire.ScrubbingOptions(callback=scrubbing_callback())
        logfire.configure(send_to_logfire=False, console=False, service_name="app",
                          additional_span_processors=[SimpleSpanProcessor(exporter)], **options)
        diagnosis_log = logging.getLogger("otel_openai_scopes.diagnosis")
        diagnosis_log.addHandler(logfire.LogfireLoggingHandler())
        diagnosis_log.setLevel(logging.INFO)

    from otel_openai_scopes import OpenAIScopesInstrumentor

    OpenAIScopesInstrumentor().instrument()
    import openai
    from openai._types import Omit

    base = os.environ["FAKE_BASE_URL"]
    clients = [openai.OpenAI(api_key=key, base_url=base, max_retries=0) for key in json.loads(os.environ["KEYS"])]
    # No credential at all (openai 3.x refuses to build such a request; the span describes the attempt anyway).
    clients.append(openai.OpenAI(api_key="unused", base_url=base, max_retries=0,
                                 default_headers={"Authorization": Omit()}))
    for c in clients:
        for call in (c.models.list, lambda: c.beta.threads.runs.list("thread_1"),
                     lambda: c.post("/realtime/sessions", cast_to=object, body={})):
            try:
                call()
            except (openai.APIError, TypeError):
                pass
    # Every key-kind value of the contract through the same pipeline, on a span and on an event.
    tracer = trace.get_tracer("contract")
    for kind in sorted(set(A.KEY_KINDS) | {"user_token", "token"}):
        attrs = {A.KEY_KIND: kind, A.KEY_FINGERPRINT: "0123456789abcdef", A.KEY_HINT: "sk-proj-...Wx9_"}
        with tracer.start_as_current_span("kind " + kind, attributes=attrs) as span:
            span.add_event(A.EVENT_DIAGNOSIS_CHANGED, attrs)
    out = [{"scope": s.instrumentation_scope.name, "name": s.name, "status": s.status.description or "",
            "attributes": dict(s.attributes),
            "events": [{"name": e.name, "attributes": dict(e.attributes)} for e in s.events]}
           for s in exporter.get_finished_spans()]
    print(json.dumps(out, default=list))
""")


def _jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{make_key('', 43)}"


def _keys(fake) -> list[str]:
    """One credential of every kind a call can carry today and after issue 15 (OAuth user tokens, other JWTs);
    the last one is unknown to the server (its 401 carries ``code: invalid_api_key``)."""
    granted = [make_key("sk-proj-"), make_key("sk-"), make_key("sk-svcacct-"), make_key("sk-admin-"),
               _jwt({"iss": "https://auth.openai.com", "sub": "user-abc", "client_id": "app_x",
                     "scp": ["api.model.read", "model.read"], "exp": 4102444800}),
               _jwt({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ns:app",
                     "aud": ["openai"], "exp": 4102444800}),
               _jwt({"iss": "https://idp.example", "sub": "x", "exp": 4102444800}),
               "custom-gateway-credential-" + make_key("", 24)]
    for key in granted:
        fake.grant(key, scopes=["api.model.read", "model.read"])
    return [*granted, make_key("sk-proj-")]


def _run(mode: str, fake, keys: list[str], app) -> list[dict]:
    env = {**os.environ, "FAKE_BASE_URL": fake.base_url, "KEYS": json.dumps(keys)}
    proc = subprocess.run([sys.executable, str(app), mode], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ours(spans: list[dict]) -> list[dict]:
    return [s for s in spans if s["scope"].startswith("otel_openai_scopes")]


def _values(value) -> list:
    return value if isinstance(value, list) else [value]


def _lost(plain: list[dict], scrubbed: list[dict]) -> set[tuple[str, str]]:
    """(attribute, value as written) of every value Logfire rewrote, on our spans and their events."""
    assert [s["name"] for s in plain] == [s["name"] for s in scrubbed]
    lost = set()
    for p, s in zip(plain, scrubbed):
        pairs = [(p["attributes"], s["attributes"])]
        assert [e["name"] for e in p["events"]] == [e["name"] for e in s["events"]]
        pairs += [(pe["attributes"], se["attributes"]) for pe, se in zip(p["events"], s["events"])]
        for written, seen in pairs:
            for key, value in written.items():
                for before, after in zip(_values(value), _values(seen.get(key))):
                    if isinstance(after, str) and after.startswith(SCRUBBED):
                        lost.add((key, before))
    return lost


@pytest.fixture(scope="module")
def runs(fake_server, tmp_path_factory):
    """The three runs, once per module; the app lives in a folder named ``auth`` (a common package name, and one
    of Logfire's patterns): its spans' ``openai.client.origin`` contains it."""
    fake_server.reset()
    fake_server.keys.clear()
    app = tmp_path_factory.mktemp("logfire") / "myservice" / "auth" / "app.py"
    app.parent.mkdir(parents=True)
    app.write_text(APP)
    keys = _keys(fake_server)
    return {mode: _run(mode, fake_server, keys, app) for mode in ("plain", "logfire", "callback")}, keys, app


def test_fingerprint_hint_and_kind_survive_logfire_default_scrubbing_for_every_kind(runs):
    by_mode, keys, _ = runs
    plain, scrubbed = _ours(by_mode["plain"]), _ours(by_mode["logfire"])
    assert len(plain) == len(scrubbed) == 3 * (len(keys) + 1)
    kinds = set()
    for p, s in zip(plain, scrubbed):
        for written, seen in [(p["attributes"], s["attributes"]),
                              *((pe["attributes"], se["attributes"]) for pe, se in zip(p["events"], s["events"]))]:
            for name in KEY_ATTRIBUTES:
                if name in written:
                    assert seen[name] == written[name], (name, written[name], seen[name])
        kinds.add(s["attributes"][A.KEY_KIND])
    assert {"project", "user", "service_account", "admin", "other"} <= kinds <= set(A.KEY_KINDS) | {"user_token",
                                                                                                     "token"}
    assert any(s["events"] for s in scrubbed)  # diagnosis events were checked too
    contract = [s for s in by_mode["logfire"] if s["scope"] == "contract"]
    assert {s["attributes"][A.KEY_KIND] for s in contract} == set(A.KEY_KINDS) | {"user_token", "token"}
    for s in contract:
        for attrs in [s["attributes"], *(e["attributes"] for e in s["events"])]:
            assert not any(str(attrs[n]).startswith(SCRUBBED) for n in KEY_ATTRIBUTES), attrs
    # The names themselves: no attribute or event name of ours is rewritten or dropped.
    assert all(set(p["attributes"]) <= set(s["attributes"]) for p, s in zip(plain, scrubbed))


def test_logfire_default_scrubbing_rewrites_exactly_the_documented_values(runs):
    """The README lists what Logfire users lose by default; this is that list, measured."""
    by_mode, _, app = runs
    lost = _lost(_ours(by_mode["plain"]), _ours(by_mode["logfire"]))
    origins = {value for name, value in lost if name == A.CLIENT_ORIGIN}
    assert origins and all(value.startswith(f"{app}:") for value in origins)
    assert lost - {(A.CLIENT_ORIGIN, value) for value in origins} == {
        (A.TEMPLATE, "/v1/realtime/sessions"),  # templates and operations naming sessions, client secrets, api keys
        (A.OPERATION, "beta.realtime.sessions.create"),
        (A.ERROR_CODE, "invalid_api_key"),  # OpenAI's code for a key it does not know
    }
    plain, scrubbed = _ours(by_mode["plain"]), _ours(by_mode["logfire"])
    # Span names and status messages are not scrubbed: the template and the error's own words stay there.
    assert [(s["name"], s["status"]) for s in plain] == [(s["name"], s["status"]) for s in scrubbed]
    assert any("API key" in s["status"] for s in scrubbed) and any("sessions" in s["name"] for s in scrubbed)
    logs = [s for s in by_mode["logfire"] if s["attributes"].get("logfire.span_type") == "log"]
    assert logs and all(s["attributes"]["openai_key_fingerprint"] == s["attributes"]["logfire.msg"].split()[3]
                        for s in logs)  # the diagnosis log lines keep the fingerprint too


def test_the_scrubbing_callback_keeps_every_value_of_ours(runs):
    by_mode, _, app = runs
    plain, kept = _ours(by_mode["plain"]), _ours(by_mode["callback"])
    assert _lost(plain, kept) == set()
    sessions = [s for s in kept if s["attributes"].get(A.TEMPLATE) == "/v1/realtime/sessions"]
    assert sessions and all(s["attributes"][A.OPERATION] == "beta.realtime.sessions.create" for s in sessions)
    assert any(s["attributes"].get(A.ERROR_CODE) == "invalid_api_key" for s in kept)
    assert all(s["attributes"][A.CLIENT_ORIGIN].startswith(f"{app}:") for s in kept)


def test_the_scrubbing_callback_leaves_everything_else_to_logfire():
    from logfire._internal.scrubbing import Scrubber  # the scrubber logfire.configure builds, driven directly

    from otel_openai_scopes.logfire_scrubbing import scrubbing_callback

    seen = []
    scrubber = Scrubber(None, scrubbing_callback(then=lambda m: seen.append(m.path)))
    key = make_key()
    attributes = {
        A.TEMPLATE: "/v1/realtime/client_secrets",  # ours: kept
        A.ERROR_CODE: f"invalid_api_key {key}",  # ours, but it looks like a credential: Logfire decides
        "http.request.header.x_session": "abc",  # not ours, matched by name: Logfire decides
        "app.note": "the session expired",  # not ours: Logfire decides
    }
    out, _notes = scrubber.scrub_value(("attributes",), attributes)
    assert out[A.TEMPLATE] == "/v1/realtime/client_secrets"
    assert all(out[name].startswith(SCRUBBED) for name in list(attributes)[1:]), out
    assert len(seen) == 3  # the user's own callback was asked about each of those


def test_what_logfire_scrubs_in_the_scope_map_is_what_the_readme_says():
    """Every template, operation and scope of the packaged scope map against Logfire's default patterns: only
    templates and operations naming sessions, secrets, credentials or API keys, and the scopes of the admin
    API-key endpoints, are scrubbed (README "With Pydantic Logfire"). A new endpoint that breaks this needs the
    README updated."""
    from logfire._internal.scrubbing import Scrubber

    from otel_openai_scopes.endpoints import endpoints_from_rows
    from otel_openai_scopes.scope_map import packaged_rows

    scrubber = Scrubber(None)
    scrubbed = set()
    for endpoint in endpoints_from_rows(packaged_rows()):
        values = {A.TEMPLATE: [endpoint.template], A.OPERATION: [endpoint.operation],
                  A.SCOPE_REQUIRED: list(endpoint.scopes)}
        out, _notes = scrubber.scrub_value(("attributes",), values)
        for name, before in values.items():
            scrubbed |= {(name, b) for b, a in zip(before, out[name]) if a != b}
    assert {(name, value) for name, value in scrubbed if name == A.TEMPLATE}  # the README's first item is real
    for name, value in scrubbed:
        if name == A.SCOPE_REQUIRED:
            assert value.startswith("api.organization.") and ".api_keys." in value, value
        else:
            assert any(word in value for word in ("session", "secret", "credential", "api_key")), (name, value)
