"""The fake API itself: cursor pagination that ends for every SDK page class (sync and async, both SDK lanes),
the pagination rules as properties, and the control API with its help."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import urllib.error
import urllib.request
import warnings

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_openai_scopes.scope_map import packaged_rows
from otel_openai_scopes.tools.fake_server import Identity, control
from otel_openai_scopes.tools.fake_server.pages import page
from tests.support.fake_process import control as post_control
from tests.support.keys import make_key

LENGTH, LIMIT = 7, 3
#: Auto-pagination of a list that never ends is cut here (a run that stops on its own is far below).
REQUEST_CAP = 50


def list_operations() -> list[str]:
    """The SDK operation of every list endpoint in the packaged scope map."""
    return sorted({r["operation"] for r in packaged_rows()
                   if r["method"] == "GET" and r["operation"].rsplit(".", 1)[-1] == "list"})


def resolve(client, operation: str):
    obj = client
    for part in operation.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def call_args(fn) -> dict:
    """Every required argument (path ids) as a plausible id, and ``limit`` where the method takes it."""
    params = inspect.signature(fn).parameters
    args = {name: f"{name}_abc123" for name, p in params.items()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if "limit" in params:
        args["limit"] = LIMIT
    return args


@pytest.fixture
def paged(fake, key):
    fake.list_length = LENGTH
    yield fake
    fake.list_length = 1


class Walk:
    """Counts what one auto-paginated walk asked for, and stops a walk that never ends."""

    def __init__(self, fake, operation: str, fn) -> None:
        self.fake, self.operation, self.args = fake, operation, call_args(fn)
        self.before, self.ids = fake.requests_seen, []

    def saw(self, item) -> None:
        self.ids.append(item.id)
        assert self.fake.requests_seen - self.before < REQUEST_CAP, (self.operation, "pagination does not end")

    def result(self):
        return self.ids, self.fake.requests_seen - self.before, "limit" in self.args


def _start(client_class, fake, key, operation):
    admin = {"admin_api_key": key} if "admin_api_key" in inspect.signature(client_class).parameters else {}
    client = client_class(api_key=key, base_url=fake.base_url, max_retries=0, **admin)
    fn = resolve(client, operation)
    return (client, fn, Walk(fake, operation, fn)) if fn is not None else (client, None, None)


def _sync_walk(fake, key, operation):
    client, fn, walk = _start(openai.OpenAI, fake, key, operation)
    with client, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pages = fn(**walk.args) if fn else None
        if not hasattr(pages, "has_next_page"):  # not in this SDK, or a list the SDK does not page
            return None
        for item in pages:
            walk.saw(item)
    return walk.result()


def _async_walk(fake, key, operation):
    async def run():
        client, fn, walk = _start(openai.AsyncOpenAI, fake, key, operation)
        async with client:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pages = fn(**walk.args) if fn else None
                if inspect.iscoroutine(pages):  # a list the SDK does not page
                    await pages
                if not hasattr(pages, "__aiter__"):
                    return None
                async for item in pages:
                    walk.saw(item)
        return walk.result()

    return asyncio.run(run())


@pytest.mark.parametrize("walk", [_sync_walk, _async_walk], ids=["sync", "async"])
def test_auto_pagination_ends_on_every_list_endpoint(paged, key, walk):
    walked = set()
    for operation in list_operations():
        result = walk(paged, key, operation)
        if result is None:  # this SDK has no such method, or does not page it
            continue
        ids, requests, limited = result
        walked.add(operation)
        assert len(ids) == LENGTH and len(set(ids)) == LENGTH, (operation, ids)
        # ceil(7 / 3) = 3 pages (one page of 20 where the SDK has no limit); SDKs that ignore has_more (1.35.7)
        # ask once more and get an empty page; the models list is not paginated at all
        pages = 1 if operation == "models.list" else 3 if limited else 1
        assert requests in (pages, pages + 1), (operation, requests)
    # both SDK lanes page at least these (9 lists in 1.35.7; in 3.63, those of the admin API too)
    assert walked >= {"beta.threads.runs.list", "beta.threads.messages.list", "beta.threads.runs.steps.list",
                      "beta.assistants.list", "files.list", "batches.list", "fine_tuning.jobs.list", "models.list"}


def test_runs_list_auto_pagination_ends_with_one_item(fake, key):
    """The newcomer's case: ``async for run in runs.list(...)`` on openai 1.35.7 asked 12,310 times in 90 s."""
    async def walk():
        client = openai.AsyncOpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
        started = time.monotonic()
        runs = [run.id async for run in client.beta.threads.runs.list("thread_abc", limit=5)]
        await client.close()
        return runs, time.monotonic() - started

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        runs, _ = asyncio.run(walk())
    assert len(runs) == 1 and fake.requests_seen <= 2


def test_a_page_names_its_cursors(paged, key):
    base = paged.base_url.replace("/v1", "")
    req = urllib.request.Request(f"{base}/v1/files?limit=3&after=file-fake00000002",
                                 headers={"Authorization": f"Bearer {key}"})
    body = json.loads(urllib.request.urlopen(req, timeout=10).read())
    assert [f["id"] for f in body["data"]] == ["file-fake00000003", "file-fake00000004", "file-fake00000005"]
    assert body["first_id"] == "file-fake00000003" and body["last_id"] == "file-fake00000005"
    assert body["has_more"] is True and body["next"] == "file-fake00000005"


# ---- the pagination rules --------------------------------------------------------------------------------
def _make(oid: str, index: int) -> dict:
    return {"id": oid}


@given(st.integers(0, 40), st.integers(1, 12))
def test_walking_forward_or_backward_yields_every_item_once(length, limit):
    forward, query, pages = [], {"limit": str(limit)}, 0
    while True:
        p = page("x_", length, query, _make)
        pages += 1
        forward += [d["id"] for d in p["data"]]
        assert p["has_more"] == (len(forward) < length)
        assert (p["next"] is None) == (not p["has_more"])
        if not p["has_more"]:
            break
        query = {"limit": str(limit), "after": p["last_id"]}
    assert forward == [f"x_fake{i:08d}" for i in range(length)]
    assert pages == max(1, -(-length // limit))
    # an SDK that ignores has_more asks once more: the page after the last item is empty and says so
    if forward:
        tail = page("x_", length, {"after": forward[-1]}, _make)
        assert tail["data"] == [] and tail["has_more"] is False and tail["first_id"] is None
    backward, cursor = [], forward[-1] if forward else None
    while cursor is not None:
        p = page("x_", length, {"limit": str(limit), "before": cursor}, _make)
        backward = [d["id"] for d in p["data"]] + backward
        cursor = p["first_id"] if p["has_more"] else None
    assert backward == forward[:-1]


def test_unknown_cursors_and_odd_limits():
    assert page("x_", 5, {"after": "x_other"}, _make)["data"] == []
    assert page("x_", 5, {"after": "y_fake00000001"}, _make)["data"] == []
    assert len(page("x_", 500, {"limit": "1000"}, _make)["data"]) == 100
    assert len(page("x_", 500, {"limit": "0"}, _make)["data"]) == 1
    assert len(page("x_", 500, {"limit": "many"}, _make)["data"]) == 20
    assert page("x_", 5, {"page": "x_fake00000003"}, _make)["data"] == [{"id": "x_fake00000004"}]  # token pages


# ---- the control API ------------------------------------------------------------------------------------
def test_every_control_action_is_in_the_help_and_works(fake):
    from otel_openai_scopes.tools.commands import FAKE_SERVER_HELP

    for name in control.ACTIONS:
        assert control.PREFIX + name in FAKE_SERVER_HELP, name
    key = make_key()
    post_control(fake.base_url, "grant", {"key": key, "scopes": ["api.model.read", "model.read"]})
    client = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    client.models.list()
    with pytest.raises(openai.AuthenticationError):
        client.files.list()
    post_control(fake.base_url, "lose_scope", {"key": key, "scope": "api.model.read", "duration": 60})
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: api\.model\.read"):
        client.models.list()
    stats = post_control(fake.base_url, "stats", {})
    assert stats["requests"] == 3 and stats["by_status"]["401"] == 2
    assert post_control(fake.base_url, "reset", {})["requests"] == 0
    client.models.list()  # the window is gone
    other = make_key()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key=other, base_url=fake.base_url, max_retries=0).models.list()
    post_control(fake.base_url, "accept_any_key", {"enabled": True})
    try:
        openai.OpenAI(api_key=other, base_url=fake.base_url, max_retries=0).models.list()
    finally:
        fake.accept_any_key = False
    post_control(fake.base_url, "deny", {"key": key, "project": "proj_bad", "scopes": ["api.model.read"]})
    openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0, project="proj_ok").models.list()
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: api\.model\.read"):
        openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0, project="proj_bad").models.list()
    # a JWT identity by the control API: granted, then losing a scope across its tokens
    who = {"subject": "svc-control", "client_id": "app_control"}
    post_control(fake.base_url, "grant", {"identity": who, "scopes": ["api.model.read", "model.read"]})
    identity = Identity(who["subject"], client_id=who["client_id"])
    openai.OpenAI(api_key=fake.mint(identity), base_url=fake.base_url, max_retries=0).models.list()
    post_control(fake.base_url, "lose_scope", {"identity": who, "scope": "model.read", "duration": 60})
    with pytest.raises(openai.AuthenticationError, match=r"Missing scopes: model\.read"):
        openai.OpenAI(api_key=fake.mint(identity), base_url=fake.base_url, max_retries=0).models.list()
    bad = urllib.request.Request(fake.base_url.replace("/v1", "") + control.PREFIX + "grant",
                                 data=json.dumps({"identity": "svc"}).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=10)
    assert info.value.code == 400
