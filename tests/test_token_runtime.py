"""Tokens through the real SDK against the fake server: one identity across refreshes, the token's own grant, and
no claim value or token piece in any exported byte.

Static JWTs run on both SDK ends; key providers (``api_key=callable``) on the SDKs that have them (3.x).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import os
import subprocess
import sys
import time

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.exporter import OpenAIScopesFileSpanExporter
from otel_openai_scopes.fingerprint import describe
from otel_openai_scopes.tools.fake_server import Identity, workload_identity
from otel_openai_scopes.tools.otlp_json import OtlpJsonFileMetricExporter
from tests.support.tokens import claim_values, identity, make_jwt, rand, refresh, segment_pieces

THREAD = "thread_1"
READ = "api.threads.read"
ALL_SCOPES = [READ, "api.threads.write", "model.request", "api.model.request", "api.model.read", "model.read"]


def _takes_key_provider() -> bool:
    return "Callable" in str(inspect.signature(openai.OpenAI.__init__).parameters["api_key"].annotation)


needs_key_provider = pytest.mark.skipif(not _takes_key_provider(),
                                        reason=f"openai {openai.__version__} takes no api_key provider")


def scope_error_spans(telemetry):
    return [s for s in telemetry.spans() if s.attributes.get(A.SCOPE_ERROR)]


class Minter:
    """A key provider: a fresh token of one identity every ``every`` calls (new issue time, expiry, token id and
    signature; the same issuer, subject and client). The fake server holds a token to the scopes its claims list,
    and scope-loss windows name the identity, so a flap follows it across refreshes."""

    def __init__(self, claims, every: int = 1) -> None:
        self.claims, self.every = claims, every
        self.calls = 0
        self.tokens: list[str] = []
        self.identity = Identity(claims["sub"], claims["iss"], claims["azp"])

    def mint(self) -> str:
        if self.calls % self.every == 0:
            self.tokens.append(refresh(self.claims, len(self.tokens)))
        self.calls += 1
        return self.tokens[-1]

    def __call__(self) -> str:
        return self.mint()

    async def async_call(self) -> str:
        return self.mint()


# ---- static tokens: both SDK ends ----------------------------------------------------------------
def test_a_token_without_the_scope_is_diagnosed_at_its_first_failure(fake, instrumentor, telemetry, caplog):
    claims = identity(scp=["model.request", "api.model.read", "model.read"])
    token = make_jwt(claims)
    fake.grant(token, scopes=["model.request", "api.model.read", "model.read"])
    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    c = openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0)
    c.models.list()
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert [s.attributes[A.DIAGNOSIS] for s in errors] == [V.TOKEN_LACKS_SCOPE] * 3
    first = errors[0].attributes
    assert first[A.SCOPE_GRANTED] == ("model.request", "api.model.read", "model.read")
    assert first[A.KEY_KIND] == "user_token"
    assert first[A.KEY_FINGERPRINT] == describe(token).fingerprint
    lines = [r.getMessage() for r in caplog.records if V.TOKEN_LACKS_SCOPE in r.getMessage()]
    assert len(lines) == 1 and "re-authorise" in lines[0] and READ in lines[0]
    assert telemetry.metric_sum(A.METRIC_SCOPE_ERRORS, **{A.DIAGNOSIS: V.TOKEN_LACKS_SCOPE}) == 3


def test_public_names_in_a_tokens_claims_leave_the_error_readable_and_the_scope_parsed(fake, instrumentor,
                                                                                       telemetry):
    """An OpenAI-style token: issuer and audience URLs, a ``permissions`` list naming the very scope that is missing.
    Neither masks the missing scope out of the error (it is parsed, and token_lacks_scope said) nor the links of the
    message; the subject quoted back is still masked."""
    claims = identity(iss="https://auth.openai.com", aud=["https://api.openai.com/v1"],
                      permissions=[READ], scp=["model.request", "api.model.read", "model.read"])
    token = make_jwt(claims)
    fake.script("GET", "/threads/", 401, {"error": {
        "message": f"You have insufficient permissions for this operation. Missing scopes: {READ}. Subject "
                   f"{claims['sub']}; see https://platform.openai.com/docs/guides/production-best-practices.",
        "type": "invalid_request_error", "code": None}})
    c = openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        c.beta.threads.runs.list(THREAD)
    (error,) = scope_error_spans(telemetry)
    assert error.attributes[A.SCOPE_MISSING] == (READ,) and error.attributes[A.DIAGNOSIS] == V.TOKEN_LACKS_SCOPE
    status = error.status.description
    assert "https://platform.openai.com/docs/guides/production-best-practices" in status
    assert claims["sub"] not in status and "***" in status


def test_a_token_whose_grant_includes_the_scope_follows_its_history(fake, instrumentor, telemetry, caplog):
    token = make_jwt(identity(scp=ALL_SCOPES))
    fake.grant(token, scopes=["model.request"])  # the server disagrees with the token: role or platform
    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    c = openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0)
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert [s.attributes[A.DIAGNOSIS] for s in errors] == [V.UNKNOWN, V.UNKNOWN, V.NEVER_GRANTED]
    assert READ in errors[0].attributes[A.SCOPE_GRANTED]
    assert any("grant" in r.getMessage() and READ in r.getMessage() for r in caplog.records
               if V.NEVER_GRANTED in r.getMessage())


def test_two_identities_are_told_apart_and_keys_are_unaffected(fake, instrumentor, telemetry):
    alice, bob = identity(scp=ALL_SCOPES), identity(scp=ALL_SCOPES)
    tokens = [refresh(alice, 0), refresh(alice, 1), refresh(bob, 0)]
    for token in tokens:
        fake.grant(token, scopes=ALL_SCOPES)
    for token in tokens:
        openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0).models.list()
    fps = [s.attributes[A.KEY_FINGERPRINT] for s in telemetry.spans()]
    assert fps[0] == fps[1] != fps[2]
    assert [s.attributes[A.KEY_HINT] for s in telemetry.spans()] == ["eyJ...#" + fp[:4] for fp in fps]


def test_a_jwt_without_scopes_or_client_is_kind_token_with_no_grant_and_follows_its_history(fake, instrumentor,
                                                                                          telemetry):
    """A JWT naming only an issuer and subject: kind ``token``, its identity's fingerprint, no ``openai.scope.granted``
    (its claims do not say what it was granted), so no token_lacks_scope: unknown, then never_granted."""
    claims = {"iss": "https://idp." + rand(8).lower() + ".example", "sub": rand(20, "svc-")}
    tokens = [refresh(claims, n) for n in range(3)]
    for token in tokens:
        fake.grant(token, scopes=["model.read"])
    for token in tokens:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0).beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert [s.attributes[A.DIAGNOSIS] for s in errors] == [V.UNKNOWN, V.UNKNOWN, V.NEVER_GRANTED]
    assert {s.attributes[A.KEY_KIND] for s in errors} == {"token"}
    assert {s.attributes[A.KEY_FINGERPRINT] for s in errors} == {describe(tokens[0]).fingerprint}
    assert all(A.SCOPE_GRANTED not in s.attributes for s in errors)


def test_a_token_refreshed_by_assignment_is_one_identity_and_no_mutation(fake, instrumentor, telemetry):
    """Apps on SDKs without key providers (1.x) refresh a token by assigning ``client.api_key``: ten refreshes of one
    identity keep one fingerprint and are no mutation; another identity's token on the same client is one."""
    claims = identity(scp=ALL_SCOPES)
    tokens = [refresh(claims, n) for n in range(11)]
    c = openai.OpenAI(api_key=tokens[0], base_url=fake.base_url, max_retries=0)
    for token in tokens:
        c.api_key = token
        c.beta.threads.runs.list(THREAD)
    c.api_key = refresh(identity(scp=ALL_SCOPES), 0)
    c.beta.threads.runs.list(THREAD)
    spans = telemetry.spans()
    assert len(spans) == 12 and {s.attributes[A.HTTP_STATUS] for s in spans} == {200}
    assert {s.attributes[A.KEY_FINGERPRINT] for s in spans[:11]} == {describe(tokens[0]).fingerprint}
    assert all(A.CLIENT_MUTATED not in s.attributes for s in spans[:11])
    assert spans[11].attributes[A.KEY_FINGERPRINT] != spans[0].attributes[A.KEY_FINGERPRINT]
    assert spans[11].attributes[A.CLIENT_MUTATED] == ("api_key",)


# ---- key providers (openai 3.x) ------------------------------------------------------------------
@needs_key_provider
def test_one_fingerprint_across_refreshes_and_a_refresh_is_no_mutation(fake, instrumentor, telemetry):
    minter = Minter(identity(scp=ALL_SCOPES))
    c = openai.OpenAI(api_key=minter, base_url=fake.base_url, max_retries=0)
    for _ in range(12):
        c.beta.threads.runs.list(THREAD)
    assert len(set(minter.tokens)) >= 11  # at least 10 refreshes
    spans = telemetry.spans()
    assert len(spans) == 12
    assert {s.attributes[A.KEY_FINGERPRINT] for s in spans} == {describe(minter.tokens[0]).fingerprint}
    assert all(A.CLIENT_MUTATED not in s.attributes for s in spans)
    assert {s.attributes[A.KEY_KIND] for s in spans} == {"user_token"}
    fps = {p.attributes[A.KEY_FINGERPRINT] for p in telemetry.metric_points(A.METRIC_REQUESTS)}
    assert len(fps) == 1  # one series, not one per refresh


@needs_key_provider
def test_async_key_provider_keeps_one_fingerprint(fake, instrumentor, telemetry):
    minter = Minter(identity(scp=ALL_SCOPES))

    async def run():
        c = openai.AsyncOpenAI(api_key=minter.async_call, base_url=fake.base_url, max_retries=0)
        for _ in range(11):
            await c.beta.threads.runs.list(THREAD)
        await c.close()

    asyncio.run(run())
    spans = telemetry.spans()
    assert len(set(minter.tokens)) == 11 and len(spans) == 11
    assert len({s.attributes[A.KEY_FINGERPRINT] for s in spans}) == 1
    assert all(A.CLIENT_MUTATED not in s.attributes for s in spans)


@needs_key_provider
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_platform_flap_in_the_middle_of_refreshes_is_scope_flapping(fake, instrumentor, telemetry, mode):
    """A fresh token every 8 calls; in the middle, the platform drops the scope on every other call of the
    identity (a loss window opened before and closed after each dropped call): the identity's history survives
    each refresh, so its errors are platform-side, not never_granted."""
    minter = Minter(identity(scp=ALL_SCOPES), every=8)
    calls, errors = 120, 0

    def flapping(i: int):
        return fake.lose_scope(minter.identity, READ) if 30 <= i < 90 and i % 2 == 0 else None

    if mode == "sync":
        c = openai.OpenAI(api_key=minter, base_url=fake.base_url, max_retries=0)
        for i in range(calls):
            window = flapping(i)
            try:
                c.beta.threads.runs.list(THREAD)
            except openai.AuthenticationError:
                errors += 1
            if window is not None:
                fake.end_window(window)
    else:
        async def run() -> int:
            failed = 0
            async with openai.AsyncOpenAI(api_key=minter.async_call, base_url=fake.base_url, max_retries=0) as ac:
                for i in range(calls):
                    window = flapping(i)
                    try:
                        await ac.beta.threads.runs.list(THREAD)
                    except openai.AuthenticationError:
                        failed += 1
                    if window is not None:
                        fake.end_window(window)
            return failed

        errors = asyncio.run(run())
    assert len(set(minter.tokens)) == calls // 8 and errors == 30  # 14 refreshes; one error per dropped call
    spans = telemetry.spans()
    assert len({s.attributes[A.KEY_FINGERPRINT] for s in spans}) == 1
    labels = [s.attributes[A.DIAGNOSIS] for s in scope_error_spans(telemetry)]
    committed = [label for label in labels if label != V.UNKNOWN]
    share = committed.count(V.SCOPE_FLAPPING) / len(committed)
    print(f"\n{mode}: {len(set(minter.tokens))} tokens, {len(labels)} scope errors, "
          f"{committed.count(V.SCOPE_FLAPPING)}/{len(committed)} committed verdicts scope_flapping ({share:.1%})")
    assert len(labels) == errors and share >= 0.99, labels


def test_a_token_whose_grant_includes_the_scope_and_fails_after_a_success_is_platform_side(fake, instrumentor,
                                                                                           telemetry):
    """The token's own grant lists the scope, the same key tuple passed it, and it fails now: scope_flapping (the
    grant rules out token_lacks_scope; the success of the same tuple makes it platform-side)."""
    token = make_jwt(identity(scp=ALL_SCOPES))
    fake.grant(token, scopes=ALL_SCOPES)
    c = openai.OpenAI(api_key=token, base_url=fake.base_url, max_retries=0)
    c.beta.threads.runs.list(THREAD)
    window = fake.lose_scope(token, READ)
    with pytest.raises(openai.AuthenticationError):
        c.beta.threads.runs.list(THREAD)
    fake.end_window(window)
    (error,) = scope_error_spans(telemetry)
    assert error.attributes[A.DIAGNOSIS] == V.SCOPE_FLAPPING and READ in error.attributes[A.SCOPE_GRANTED]
    assert V.meaning(V.SCOPE_FLAPPING).cause == V.PLATFORM


# ---- workload identity (openai 3.x): the SDK's own token exchange, against the fake server ----------------
try:
    from openai.auth import WorkloadIdentity  # noqa: F401  (openai >= 3)

    HAS_WORKLOAD_IDENTITY = True
except ImportError:
    HAS_WORKLOAD_IDENTITY = False
needs_workload_identity = pytest.mark.skipif(not HAS_WORKLOAD_IDENTITY, reason="openai < 3 has no workload identity")
FILES = "api.files.read"


def _workload(fake) -> dict:
    sa, idp = rand(16, "sa_"), rand(16, "idp_")
    fake.grant_identity(workload_identity(sa, idp), scopes=[FILES])
    subject_token = make_jwt({"iss": "https://k8s.example", "sub": rand(20, "system:serviceaccount:")})
    return {"identity_provider_id": idp, "service_account_id": sa,
            "provider": {"token_type": "jwt", "get_token": lambda: subject_token}}


def _check_workload_spans(telemetry, calls: int) -> None:
    spans = telemetry.spans()
    ok = [s for s in spans if s.attributes.get(A.HTTP_STATUS) == 200]
    assert len(ok) == calls
    assert len({s.attributes[A.KEY_FINGERPRINT] for s in spans}) == 1  # one identity, whatever the token
    assert {s.attributes[A.KEY_KIND] for s in spans} == {"workload_identity"}
    assert all(A.CLIENT_MUTATED not in s.attributes for s in spans)  # a refresh is no mutation
    errors = scope_error_spans(telemetry)
    assert errors and {s.attributes[A.DIAGNOSIS] for s in errors} == {V.TOKEN_LACKS_SCOPE}
    assert errors[0].attributes[A.SCOPE_GRANTED] == (FILES,)


@needs_workload_identity
def test_workload_identity_one_fingerprint_and_its_grant(fake, instrumentor, telemetry):
    fake.token_ttl = 0.3  # the SDK refreshes at half the lifetime
    try:
        c = fake.serve_token_exchange(openai.OpenAI(workload_identity=_workload(fake), base_url=fake.base_url,
                                                    max_retries=0))
        for _ in range(12):
            c.files.list()
            time.sleep(0.2)
        with pytest.raises(openai.AuthenticationError, match="Missing scopes"):
            c.models.list()  # the exchanged token lists only what the workload was granted
    finally:
        fake.token_ttl = 60.0
    assert fake.exchanges >= 10
    _check_workload_spans(telemetry, 12)


@needs_workload_identity
def test_workload_identity_async(fake, instrumentor, telemetry):
    fake.token_ttl = 0.3

    async def run() -> None:
        c = fake.serve_token_exchange(openai.AsyncOpenAI(workload_identity=_workload(fake), base_url=fake.base_url,
                                                         max_retries=0))
        async with c:
            for _ in range(12):
                await c.files.list()
                await asyncio.sleep(0.2)
            with pytest.raises(openai.AuthenticationError, match="Missing scopes"):
                await c.models.list()

    try:
        asyncio.run(run())
    finally:
        fake.token_ttl = 60.0
    assert fake.exchanges >= 10
    _check_workload_spans(telemetry, 12)


# ---- nothing of a token leaves the process -------------------------------------------------------
def _token_scenarios(fake, minted, static, hostile):
    c = openai.OpenAI(api_key=static, base_url=fake.base_url, max_retries=1, organization="org-x", project="proj_y")
    c.models.list()
    for _ in range(2):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list(THREAD)  # the token lacks the scope
    # A server (or proxy) that quotes the token's claims and the token back.
    claims = hostile
    fake.script("GET", "/models", 401, {"error": {"message": f"user {claims['email']} ({claims['sub']}, "
                                                             f"{claims['name']}) of {claims['azp']} lacks scope; "
                                                             f"token {static}. Missing scopes: model.read."}})
    with pytest.raises(openai.AuthenticationError):
        c.models.list()
    if minted is not None:
        p = openai.OpenAI(api_key=minted, base_url=fake.base_url, max_retries=0)
        for _ in range(10):
            p.models.list()
        p.copy(organization="org-other").models.list()

        async def run_async():
            ac = openai.AsyncOpenAI(api_key=minted.async_call, base_url=fake.base_url)
            await ac.models.list()
            await ac.close()

        asyncio.run(run_async())


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"})


def test_no_claim_value_and_no_token_piece_in_any_exported_byte(fake, tmp_path, caplog):
    """Spans (the runtime's ``openai_scopes_file`` exporter and the console exporter), span events, metrics, the
    instrumentation's logs, and the CLI run on that file (``report`` terminal, JSON and HTML; ``doctor`` reading
    the token and appending its telemetry; ``fingerprint``): no claim value of any token, and no 12-character piece
    of any of its segments, also when the server quotes the claims and the token back."""
    user = identity(scp=["model.request", "api.model.read", "model.read"], nested={"account": "acct_" + "Zq9" * 5})
    static = make_jwt(user)
    fake.grant(static, scopes=["model.request", "api.model.read", "model.read"])
    minter = Minter(identity(scp=ALL_SCOPES)) if _takes_key_provider() else None
    out, metrics_out, html = tmp_path / "telemetry.jsonl", tmp_path / "metrics.jsonl", tmp_path / "report.html"
    console = io.StringIO()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OpenAIScopesFileSpanExporter(str(out))))
    tp.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=console)))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    caplog.set_level(logging.DEBUG, logger="otel_openai_scopes")
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp)
    try:
        _token_scenarios(fake, minter, static, user)
    finally:
        inst.uninstrument()
    metrics = reader.get_metrics_data()
    OtlpJsonFileMetricExporter(metrics_out).export(metrics)
    tp.shutdown()
    doctor = _cli("doctor", "--stdin", "--base-url", fake.base_url, "--out", str(out), stdin=static)
    exported = out.read_text(encoding="utf-8") + metrics_out.read_text(encoding="utf-8")
    logs = "\n".join(r.getMessage() + " " + repr(r.__dict__) for r in caplog.records
                     if r.name.startswith("otel_openai_scopes"))
    runs = [_cli("report", str(out)), _cli("report", "--json", str(out)), _cli("report", "--html", str(html), str(out)),
            _cli("fingerprint", "--stdin", stdin=static), doctor]
    assert [r.returncode for r in runs] == [1, 1, 1, 0, 1], [r.stderr for r in runs]  # doctor: a missing scope
    haystack = "\n".join([exported, console.getvalue(), metrics.to_json(), logs, html.read_text(encoding="utf-8"),
                          *(r.stdout + r.stderr for r in runs)])
    assert V.TOKEN_LACKS_SCOPE in exported and A.SCOPE_GRANTED in exported and "user_token" in exported
    assert "eyJ...#" in exported and describe(static).fingerprint in runs[0].stdout + runs[3].stdout
    assert V.TOKEN_LACKS_SCOPE in runs[0].stdout and "re-authorise" in logs
    tokens = [static, *(minter.tokens if minter else [])]
    all_claims = [user, *([minter.claims] if minter else [])]
    leaked = [v for claims in all_claims for v in claim_values(claims) if len(v) >= 8 and v in haystack]
    assert not leaked
    pieces = set().union(*(segment_pieces(t) for t in tokens))
    assert not [p for p in pieces if p in haystack]
