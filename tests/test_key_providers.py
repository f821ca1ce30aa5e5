"""A key provider's refresh is not a client mutation (issue 15).

openai 2.x/3.x take ``api_key`` as a provider, a callable (sync for ``OpenAI``, async for ``AsyncOpenAI``), which the
SDK calls before each request (``_refresh_api_key``) and whose result it stores in ``client.api_key``: the key a
client sends changes by design. Driven through the SDK's own classes against the fake server; openai 1.35.7 has no
providers and skips.
"""

from __future__ import annotations

import asyncio

import openai
import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes.fingerprint import describe
from tests.support.keys import make_key

pytestmark = pytest.mark.skipif(not hasattr(openai.OpenAI, "_refresh_api_key"),
                                reason=f"openai {openai.__version__} has no key providers")

THREAD = "thread_abc123"


class Rotating:
    """A provider handing out ``keys`` in turn, each for ``per_key`` calls (a short-lived credential refreshed)."""

    def __init__(self, keys: list[str], per_key: int) -> None:
        self.keys, self.per_key, self.calls = keys, per_key, 0

    def next(self) -> str:
        key = self.keys[(self.calls // self.per_key) % len(self.keys)]
        self.calls += 1
        return key

    async def anext(self) -> str:
        await asyncio.sleep(0)
        return self.next()


def _keys(fake, n: int) -> list[str]:
    keys = [make_key() for _ in range(n)]
    for k in keys:
        fake.grant(k, organization="org-test0000000000000000001", project="proj_test000000000000000001")
    return keys


def _check_refreshes(spans, keys, per_key):
    assert len(spans) == per_key * len(keys)
    sent = [s.attributes[A.KEY_FINGERPRINT] for s in spans]
    assert sent == [describe(keys[i // per_key]).fingerprint for i in range(len(spans))]  # each refresh seen
    assert len({s.attributes[A.CLIENT_ID] for s in spans}) == 1
    for s in spans:
        assert A.CLIENT_MUTATED not in s.attributes, s.attributes.get(A.CLIENT_MUTATED)
        assert s.attributes.get(A.DIAGNOSIS) != A.DIAGNOSIS_CLIENT_MUTATED


def test_sync_provider_refreshes_are_not_mutations(fake, instrumentor, telemetry):
    keys = _keys(fake, 4)
    provider = Rotating(keys, per_key=3)
    client = openai.OpenAI(api_key=provider.next, base_url=fake.base_url, max_retries=0)
    fake.lose_scope(keys[2], "api.threads.read")  # a scope error on a refreshed key: never "client_mutated"
    for i in range(12):
        if 6 <= i < 9:
            with pytest.raises(openai.AuthenticationError):
                client.beta.threads.runs.list(THREAD)
        else:
            client.models.list()
    assert provider.calls == 12 and client.api_key == keys[3]  # the SDK refreshed, and stored the result
    spans = telemetry.spans()
    _check_refreshes(spans, keys, 3)
    assert [s.attributes[A.DIAGNOSIS] for s in spans[6:9]] == ["unknown", "unknown", "never_granted"]


def test_async_provider_refreshes_are_not_mutations(fake, instrumentor, telemetry):
    keys = _keys(fake, 3)
    provider = Rotating(keys, per_key=2)

    async def go():
        client = openai.AsyncOpenAI(api_key=provider.anext, base_url=fake.base_url, max_retries=0)
        for _ in range(6):
            await client.models.list()
        await client.close()

    asyncio.run(go())
    _check_refreshes(telemetry.spans(), keys, 2)
    assert all(s.attributes[A.CLIENT_ASYNC] is True for s in telemetry.spans())


def test_a_static_key_swapped_on_the_same_client_still_is_a_mutation(fake, instrumentor, telemetry):
    """The control: without a provider, a changed key is what ``openai.client.mutated`` exists to show."""
    first, second = _keys(fake, 2)
    client = openai.OpenAI(api_key=first, base_url=fake.base_url, max_retries=0)
    client.models.list()
    client.api_key = second
    client.models.list()
    before, after = telemetry.spans()
    assert A.CLIENT_MUTATED not in before.attributes and after.attributes[A.CLIENT_MUTATED] == ("api_key",)


def test_a_provider_client_rebound_to_a_static_key_by_with_options(fake, instrumentor, telemetry):
    keys = _keys(fake, 2)
    tenant = make_key()
    fake.grant(tenant)
    parent = openai.OpenAI(api_key=Rotating(keys, per_key=1).next, base_url=fake.base_url, max_retries=0)
    child = parent.with_options(api_key=tenant)
    parent.models.list()
    child.models.list()
    child.models.list()
    p, c1, c2 = telemetry.spans()
    assert A.CLIENT_COPY_CHANGED not in p.attributes
    assert c1.attributes[A.CLIENT_COPY_CHANGED] == c2.attributes[A.CLIENT_COPY_CHANGED] == ("api_key",)
    assert c1.attributes[A.CLIENT_PARENT_ID] == p.attributes[A.CLIENT_ID]
    assert A.CLIENT_MUTATED not in c1.attributes and A.CLIENT_MUTATED not in c2.attributes
    assert c2.attributes[A.KEY_FINGERPRINT] == describe(tenant).fingerprint
