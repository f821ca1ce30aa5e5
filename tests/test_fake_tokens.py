"""The fake API with JWT credentials, through the real SDK: a token holds the scopes its claims list (narrowed by
any grant for its identity), windows and project denials follow an identity across token strings, and openai
3.x's workload identity and key providers get short-lived tokens of one stable identity from the fake."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import openai
import pytest

from otel_openai_scopes.fingerprint import describe
from otel_openai_scopes.tokens import read_claims
from otel_openai_scopes.tools.fake_server import Identity, workload_identity
from otel_openai_scopes.tools.fake_server.identity import TOKEN_EXCHANGE_GRANT_TYPE
from tests.support.keys import make_key

MODELS = ("api.model.read", "model.read")
FILES = "api.files.read"
REFRESHES = 10

try:
    from openai.auth import WorkloadIdentity  # noqa: F401  (openai >= 3)

    HAS_WORKLOAD_IDENTITY = True
except ImportError:
    HAS_WORKLOAD_IDENTITY = False
needs_workload_identity = pytest.mark.skipif(not HAS_WORKLOAD_IDENTITY, reason="openai < 3 has no workload identity")


def client(fake, credential, **kw):
    return openai.OpenAI(api_key=credential, base_url=fake.base_url, max_retries=0, **kw)


def sent_token(fake) -> str:
    return fake.last_request["headers"]["authorization"].split(" ", 1)[1]


# ---- static tokens (both SDK lanes) -----------------------------------------------------------------------
def test_a_token_holds_the_scopes_its_claims_list(fake):
    token = fake.mint(Identity(make_key("user-", 12), client_id=make_key("app_", 12)), scopes=MODELS)
    c = client(fake, token)
    c.models.list()
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: api\.files\.read"):
        c.files.list()
    assert read_claims(sent_token(fake)).scopes == MODELS  # the SDK sent the token as it is


def test_a_grant_for_the_identity_narrows_what_its_tokens_hold(fake):
    who = Identity(make_key("svc-", 12))
    fake.grant_identity(who, scopes=["api.model.read", FILES], project="proj_tokens")
    wide = fake.mint(who, scopes=[*MODELS, FILES])
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: model\.read"):
        client(fake, wide).models.list()  # the claims list model.read, the identity's grant does not
    client(fake, wide).files.list()
    assert fake.last_request["headers"]["authorization"].endswith(wide.rsplit(".", 1)[1])
    unlisted = fake.mint(who, scopes=None)  # no scope claim: the grant alone decides
    client(fake, unlisted).files.list()
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: model\.read"):
        client(fake, unlisted).models.list()


def test_an_unknown_token_without_scopes_is_rejected_like_a_wrong_key(fake):
    with pytest.raises(openai.AuthenticationError) as info:
        client(fake, fake.mint(Identity("nobody"), scopes=None)).models.list()
    assert info.value.status_code == 401 and "Incorrect API key" in str(info.value)


def test_a_scope_loss_window_follows_the_identity_across_tokens(fake):
    flaky, steady = Identity(make_key("svc-", 12)), Identity(make_key("svc-", 12))
    fake.lose_scope(flaky, FILES, duration=60)
    tokens = [fake.mint(flaky, scopes=[FILES]) for _ in range(3)]
    assert len(set(tokens)) == 3  # new strings, one identity
    for token in tokens:
        with pytest.raises(openai.AuthenticationError, match="Missing scopes"):
            client(fake, token).files.list()
    client(fake, fake.mint(steady, scopes=[FILES])).files.list()


def test_a_denial_in_one_project_follows_the_identity(fake):
    who = Identity(make_key("svc-", 12), client_id="app_tokens")
    fake.deny(who, "proj_bad", [FILES])
    token = fake.mint(who, scopes=[FILES])
    client(fake, token, project="proj_ok").files.list()
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: api\.files\.read"):
        client(fake, fake.mint(who, scopes=[FILES]), project="proj_bad").files.list()


def test_the_token_exchange_answers_bad_requests_as_oauth_does(fake):
    def post(body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(fake.token_exchange_url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    ask = {"grant_type": TOKEN_EXCHANGE_GRANT_TYPE, "subject_token": "eyJhbGciOiJub25lIn0.e30.",
           "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "identity_provider_id": "idp_1",
           "service_account_id": "sa_1"}
    assert post({**ask, "grant_type": "password"}) == (400, {"error": "unsupported_grant_type", "error_description":
                                                              "not a token-exchange request the fake understands"})
    assert post({**ask, "subject_token": ""})[1]["error"] == "invalid_request"
    assert post(ask)[0] == 401  # no grant for that service account
    fake.grant_identity(workload_identity("sa_1", "idp_1"), scopes=[FILES])
    status, answer = post(ask)
    claims = read_claims(answer["access_token"])
    assert status == 200 and answer["expires_in"] == fake.token_ttl
    assert claims.identity == ("https://auth.fake-openai.test", "sa_1", "idp_1") and claims.scopes == (FILES,)
    assert claims.kind == "workload_identity" and fake.exchanges == 1


# ---- openai 3.x credentials: workload identity and key providers -------------------------------------------
def _workload(fake, subject: str) -> dict:
    sa, idp = make_key("sa_", 16), make_key("idp_", 16)
    fake.grant_identity(workload_identity(sa, idp), scopes=[FILES])
    return {"identity_provider_id": idp, "service_account_id": sa,
            "provider": {"token_type": "jwt", "get_token": lambda: subject}}


def _distinct_tokens_of_one_identity(tokens: list[str]) -> None:
    assert len(set(tokens)) >= REFRESHES, len(set(tokens))
    assert len({read_claims(t).identity for t in tokens}) == 1
    assert len({describe(t).fingerprint for t in tokens}) == 1  # the runtime sees one credential


@needs_workload_identity
def test_workload_identity_refreshes_tokens_of_one_identity(fake):
    fake.token_ttl = 0.3  # the SDK refreshes at half the lifetime
    try:
        c = fake.serve_token_exchange(openai.OpenAI(workload_identity=_workload(fake, make_key("ext.", 40)),
                                                    base_url=fake.base_url, max_retries=0))
        tokens = []
        for _ in range(REFRESHES + 2):
            c.files.list()
            tokens.append(sent_token(fake))
            time.sleep(0.2)
        with pytest.raises(openai.AuthenticationError, match="Missing scopes"):
            c.models.list()  # the exchanged token lists only what the workload was granted
    finally:
        fake.token_ttl = 60.0
    _distinct_tokens_of_one_identity(tokens)
    assert describe(tokens[0]).kind == "workload_identity"
    assert fake.exchanges >= REFRESHES


@needs_workload_identity
def test_workload_identity_async(fake):
    fake.token_ttl = 0.3

    async def run() -> list[str]:
        c = fake.serve_token_exchange(openai.AsyncOpenAI(workload_identity=_workload(fake, make_key("ext.", 40)),
                                                         base_url=fake.base_url, max_retries=0))
        tokens = []
        async with c:
            for _ in range(REFRESHES + 2):
                await c.files.list()
                tokens.append(sent_token(fake))
                await asyncio.sleep(0.2)
        return tokens

    try:
        tokens = asyncio.run(run())
    finally:
        fake.token_ttl = 60.0
    _distinct_tokens_of_one_identity(tokens)


def test_serve_token_exchange_refuses_a_client_without_workload_identity(fake):
    with pytest.raises(TypeError, match="workload identity"):
        fake.serve_token_exchange(client(fake, make_key()))


@needs_workload_identity
def test_key_providers_sync_and_async_mint_a_new_token_per_request(fake):
    who = Identity(make_key("user-", 12), client_id=make_key("app_", 12))

    c = openai.OpenAI(api_key=lambda: fake.mint(who, scopes=[FILES]), base_url=fake.base_url, max_retries=0)
    sync_tokens = []
    for _ in range(REFRESHES):
        c.files.list()
        sync_tokens.append(sent_token(fake))

    async def mint() -> str:
        return fake.mint(who, scopes=[FILES])

    async def run() -> list[str]:
        tokens = []
        async with openai.AsyncOpenAI(api_key=mint, base_url=fake.base_url, max_retries=0) as ac:
            for _ in range(REFRESHES):
                await ac.files.list()
                tokens.append(sent_token(fake))
        return tokens

    _distinct_tokens_of_one_identity(sync_tokens + asyncio.run(run()))
