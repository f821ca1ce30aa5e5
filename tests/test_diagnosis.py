"""The diagnosis on scripted scenarios against the fake server, and its bounds (pure unit tests too)."""

from __future__ import annotations

import asyncio
import gc
import threading

import openai
import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.clients import ClientRegistry
from otel_openai_scopes.diagnosis import Diagnosis
from tests.support.keys import make_key

THREAD = "thread_1"
READ = "api.threads.read"


def scope_error_spans(telemetry):
    return [s for s in telemetry.spans() if s.attributes.get(A.SCOPE_ERROR)]


def labels(spans):
    return [s.attributes[A.DIAGNOSIS] for s in spans]


def test_flapping_for_all_clients(fake, key, instrumentor, telemetry):
    c1 = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    c2 = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    c1.beta.threads.runs.list(THREAD)  # the key had the scope
    fake.lose_scope(key, READ, duration=60)
    for c in (c1, c2, c1, c2):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert labels(errors) == [A.DIAGNOSIS_SCOPE_FLAPPING] * 4
    first = errors[0].attributes
    assert first[A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT] is True
    assert errors[1].attributes[A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT] is False  # c2 never succeeded itself
    assert errors[-1].attributes[A.DIAGNOSIS_FAILING_CLIENTS] == 2
    assert errors[-1].attributes[A.DIAGNOSIS_FAILING_KEYS] == 1
    changes = [e for s in errors for e in s.events if e.name == A.EVENT_DIAGNOSIS_CHANGED]
    assert len(changes) == 1 and changes[0].attributes[A.DIAGNOSIS_PREVIOUS] == "none"


def test_success_on_the_same_endpoint_counts_as_evidence(fake, key, instrumentor, telemetry):
    """messages.create is mapped to api.threads.write, yet real errors name api.threads.read: a success on the
    same endpoint is evidence the credential held what that endpoint needs."""
    c = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    c.beta.threads.messages.create(THREAD, role="user", content="x")
    fake.script("POST", "/messages", 401, {"error": {"message": "Missing scopes: api.threads.read."}})
    with pytest.raises(openai.AuthenticationError):
        c.beta.threads.messages.create(THREAD, role="user", content="x")
    assert labels(scope_error_spans(telemetry)) == [A.DIAGNOSIS_SCOPE_FLAPPING]


def test_mutated_shared_client_while_others_succeed(fake, key, instrumentor, telemetry):
    tenant = make_key()
    fake.grant(tenant, scopes=["model.request", "api.model.request"])
    shared = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    other = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    shared.beta.threads.runs.list(THREAD)
    shared.api_key = tenant  # a task swapped it and died before restoring
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            shared.beta.threads.runs.list(THREAD)
        other.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert labels(errors) == [A.DIAGNOSIS_CLIENT_MUTATED] * 3
    assert all(s.attributes[A.CLIENT_MUTATED] == ("api_key",) for s in errors)
    assert {s.attributes[A.CLIENT_ID] for s in errors} == {errors[0].attributes[A.CLIENT_ID]}
    ok = [s for s in telemetry.spans() if s.attributes.get(A.HTTP_STATUS) == 200]
    assert len(ok) == 4


def test_restricted_key_is_never_granted(fake, instrumentor, telemetry):
    restricted = make_key()
    fake.grant(restricted, scopes=["model.request", "api.model.request"])
    c = openai.OpenAI(api_key=restricted, base_url=fake.base_url, max_retries=0)
    c.chat.completions.create(model="m", messages=[])
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError):
            c.beta.threads.runs.list(THREAD)
    assert labels(scope_error_spans(telemetry)) == [A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_UNKNOWN] + \
        [A.DIAGNOSIS_NEVER_GRANTED] * 2


def test_fallback_client_built_after_an_exception(fake, key, instrumentor, telemetry, monkeypatch):
    """An error path builds a fresh client from the environment: a different (restricted) key, not a mutation."""
    env_key = make_key()
    fake.grant(env_key, scopes=["model.request", "api.model.request"])
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    primary = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    primary.beta.threads.runs.list(THREAD)
    for _ in range(3):
        try:
            raise TimeoutError("primary client is slow")
        except TimeoutError:
            fallback = openai.OpenAI(base_url=fake.base_url, max_retries=0)  # picks OPENAI_API_KEY
        with pytest.raises(openai.AuthenticationError):
            fallback.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert labels(errors) == [A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_NEVER_GRANTED]
    assert len({s.attributes[A.CLIENT_ID] for s in errors}) == 3
    assert all(A.CLIENT_MUTATED not in s.attributes for s in errors)
    assert all("test_diagnosis.py" in s.attributes[A.CLIENT_ORIGIN] for s in errors)
    assert {s.attributes[A.KEY_FINGERPRINT] for s in errors} != {
        telemetry.spans()[0].attributes[A.KEY_FINGERPRINT]}


def test_mixed_scenarios_concurrently_in_threads_and_tasks(fake, instrumentor, telemetry):
    flappy, restricted, tenant = make_key(), make_key(), make_key()
    fake.grant(flappy)
    fake.grant(restricted, scopes=["model.request"])
    fake.grant(tenant, scopes=["model.request"])
    flappy_client = openai.OpenAI(api_key=flappy, base_url=fake.base_url, max_retries=0)
    flappy_client.beta.threads.runs.list(THREAD)
    fake.lose_scope(flappy, READ, duration=60, probability=0.5)
    errors_seen: list[BaseException] = []

    def flap_worker():
        c = openai.OpenAI(api_key=flappy, base_url=fake.base_url, max_retries=0)
        for _ in range(30):
            try:
                c.beta.threads.runs.list(THREAD)
            except openai.AuthenticationError:
                pass
            except BaseException as exc:  # noqa: BLE001
                errors_seen.append(exc)

    def restricted_worker():
        c = openai.OpenAI(api_key=restricted, base_url=fake.base_url, max_retries=0)
        for _ in range(10):
            try:
                c.beta.threads.runs.list(THREAD)
            except openai.AuthenticationError:
                pass

    async def mutated_tasks():
        shared = openai.AsyncOpenAI(api_key=flappy, base_url=fake.base_url, max_retries=0)

        async def swap_and_die():
            shared.api_key = tenant
            raise RuntimeError("tenant task failed")

        await asyncio.gather(swap_and_die(), return_exceptions=True)

        async def use():
            for _ in range(5):
                try:
                    await shared.beta.threads.runs.list(THREAD)
                except openai.AuthenticationError:
                    pass

        await asyncio.gather(*(use() for _ in range(4)))
        await shared.close()

    threads = [threading.Thread(target=flap_worker) for _ in range(3)] + [threading.Thread(target=restricted_worker)]
    for t in threads:
        t.start()
    asyncio.run(mutated_tasks())
    for t in threads:
        t.join()
    assert not errors_seen
    from otel_openai_scopes.fingerprint import describe

    fp = {describe(k).fingerprint: name for k, name in ((flappy, "flappy"), (restricted, "restricted"),
                                                         (tenant, "tenant"))}
    by_kind: dict[str, set[str]] = {}
    for s in scope_error_spans(telemetry):
        by_kind.setdefault(fp[s.attributes[A.KEY_FINGERPRINT]], set()).add(s.attributes[A.DIAGNOSIS])
    assert by_kind["flappy"] == {A.DIAGNOSIS_SCOPE_FLAPPING}
    assert by_kind["tenant"] == {A.DIAGNOSIS_CLIENT_MUTATED}
    assert by_kind["restricted"] == {A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_NEVER_GRANTED}
    assert len(scope_error_spans(telemetry)) == telemetry.metric_sum(A.METRIC_SCOPE_ERRORS)


# ---- unit tests with a fake clock ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


CRED = ("fp1", "org", "proj", "api.openai.com")


def test_success_outside_the_window_is_not_flapping():
    clock = Clock()
    d = Diagnosis(window=900, clock=clock)
    d.observe_success(CRED, (READ,), "GET /threads/{thread_id}/runs", "c1")
    clock.now += 899
    assert d.observe_scope_error(CRED, READ, "GET /x", "c1", False).label == A.DIAGNOSIS_SCOPE_FLAPPING
    d2 = Diagnosis(window=900, clock=clock)
    d2.observe_success(CRED, (READ,), "GET /x", "c1")
    clock.now += 901
    labels_ = [d2.observe_scope_error(CRED, READ, "GET /y", "c1", False).label for _ in range(3)]
    assert labels_ == [A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_UNKNOWN, A.DIAGNOSIS_NEVER_GRANTED]


def test_other_org_or_project_is_another_tuple():
    d = Diagnosis()
    d.observe_success(CRED, (READ,), "GET /x", "c1")
    other_project = ("fp1", "org", "proj_other", "api.openai.com")
    # Never platform-side: the tuple has no success of its own (the key passed in another project instead).
    assert d.observe_scope_error(other_project, READ, "GET /x", "c1", False).label == V.CONTEXT_MISMATCH
    assert d.observe_scope_error(CRED, READ, "GET /x", "c1", False).label == A.DIAGNOSIS_SCOPE_FLAPPING


def test_transitions_are_reported_once_each():
    d = Diagnosis(min_failures=2)
    verdicts = [d.observe_scope_error(CRED, READ, "GET /x", "c1", False) for _ in range(4)]
    assert [v.changed for v in verdicts] == [True, True, False, False]
    d.observe_success(CRED, (READ,), "GET /x", "c1")
    v = d.observe_scope_error(CRED, READ, "GET /x", "c1", False)
    assert v.changed and v.previous == A.DIAGNOSIS_NEVER_GRANTED and v.label == A.DIAGNOSIS_SCOPE_FLAPPING


def test_diagnosis_memory_is_bounded_with_many_keys_and_clients():
    d = Diagnosis(max_entries=64)
    for i in range(10_000):
        cred = (f"fp{i}", "", "", "h")
        d.observe_success(cred, (READ, "model.request"), "GET /x", f"c{i}")
        d.observe_scope_error(cred, f"scope.{i % 500}", "GET /x", f"c{i}", False)
    assert len(d) <= 64
    assert len(d._failing) <= Diagnosis.MAX_SCOPES
    assert all(len(f.clients) <= Diagnosis.MAX_PER_SCOPE and len(f.keys) <= Diagnosis.MAX_PER_SCOPE
               for f in d._failing.values())


def test_client_registry_is_bounded_and_weak():
    class SlotClient:  # cannot carry its info: the weak, bounded index holds it
        __slots__ = ("__weakref__",)
        api_key = "sk-x"
        organization = project = base_url = None

    reg = ClientRegistry(max_clients=100)
    keep = [SlotClient() for _ in range(50)]
    for c in keep:
        reg.register(c, origin="")
    for _ in range(1000):
        reg.register(SlotClient(), origin="")  # dropped at once: weak entries go with them
    gc.collect()
    assert len(reg) == 50
    many = [SlotClient() for _ in range(500)]
    for c in many:
        reg.register(c, origin="")
    assert len(reg) == 100 and reg.evicted >= 450
    assert reg.get(many[-1]) is not None and reg.get(keep[0]) is None  # oldest forgotten


def test_live_clients_past_the_bound_keep_their_ids_without_per_call_work():
    """Finding 8: past max_clients every call re-registered (new id, new finalizer, ~2 KB kept per call)."""
    class Client:
        api_key = "sk-x"
        organization = project = base_url = None

    reg = ClientRegistry(max_clients=10)
    clients = [Client() for _ in range(50)]
    first = [reg.get_or_register(c).client_id for c in clients]
    registered = reg.registered
    for _ in range(20):
        assert [reg.get_or_register(c).client_id for c in clients] == first
    assert reg.registered == registered == 50 and len(set(first)) == 50
    assert len(reg) <= 10


def test_a_404_counts_as_evidence_the_scope_was_held(fake, key, instrumentor, telemetry):
    c = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        c.beta.threads.retrieve("thread_nonexistent_1")
    fake.lose_scope(key, READ, duration=60)
    with pytest.raises(openai.AuthenticationError):
        c.beta.threads.retrieve("thread_nonexistent_1")
    assert labels(scope_error_spans(telemetry)) == [A.DIAGNOSIS_SCOPE_FLAPPING]


# ---- token_lacks_scope and context_mismatch (pure, fake clock) -----------------------------------
def test_a_token_lacking_the_scope_is_certain_at_the_first_failure():
    d = Diagnosis(clock=Clock())
    verdicts = [d.observe_scope_error(CRED, "api.responses.write", "POST /responses", "c1", False, lacks=True)
                for _ in range(4)]
    assert [v.label for v in verdicts] == [V.TOKEN_LACKS_SCOPE] * 4
    assert [v.changed for v in verdicts] == [True, False, False, False]


def test_the_tokens_own_grant_outranks_history_but_not_a_mutated_client():
    d = Diagnosis(clock=Clock())
    d.observe_success(CRED, (READ,), "GET /x", "c1")  # the server let it through once (or the map is wrong)
    assert d.observe_scope_error(CRED, READ, "GET /x", "c1", False, lacks=True).label == V.TOKEN_LACKS_SCOPE
    assert d.observe_scope_error(CRED, READ, "GET /x", "c1", True, lacks=True).label == V.CLIENT_MUTATED
    # A token whose grant includes the scope: its history decides, as for a key.
    assert d.observe_scope_error(CRED, READ, "GET /x", "c1", False, lacks=False).label == V.SCOPE_FLAPPING


def test_the_same_key_passing_in_another_project_is_a_context_mismatch_at_once():
    clock = Clock()
    d = Diagnosis(clock=clock)
    ok = ("fp1", "org-1", "proj_ok", "api.openai.com")
    bad = ("fp1", "org-1", "proj_bad", "api.openai.com")
    d.observe_success(ok, (READ,), "GET /threads/{thread_id}/runs", "c-ok")
    clock.now += 30
    v = d.observe_scope_error(bad, READ, "GET /threads/{thread_id}/runs", "c-bad", False)
    assert v.label == V.CONTEXT_MISMATCH and (v.other_organization, v.other_project) == ("org-1", "proj_ok")
    assert v.last_success == clock.now - 30 and v.last_success_client == "c-ok"
    attrs = v.span_attributes("c-bad")
    assert attrs[A.DIAGNOSIS_LAST_SUCCESS_PROJECT] == "proj_ok"
    assert attrs[A.DIAGNOSIS_LAST_SUCCESS_ORGANIZATION] == "org-1"
    assert attrs[A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT] is False
    # The passing tuple failing too is the platform's (its own success), not a mismatch.
    assert d.observe_scope_error(ok, READ, "GET /y", "c-ok", False).label == V.SCOPE_FLAPPING
    # Evidence on the endpoint counts like evidence for the scope.
    assert d.observe_scope_error(bad, "api.threads.write", "GET /threads/{thread_id}/runs", "c-bad",
                                 False).label == V.CONTEXT_MISMATCH


def test_no_context_mismatch_for_another_key_or_host_or_outside_the_window():
    clock = Clock()
    d = Diagnosis(window=900, clock=clock)
    d.observe_success(("fp1", "", "proj_ok", "api.openai.com"), (READ,), "GET /x", "c1")
    for other in (("fp2", "", "proj_bad", "api.openai.com"), ("fp1", "", "proj_bad", "gateway.example")):
        assert d.observe_scope_error(other, READ, "GET /x", "c2", False).label == V.UNKNOWN
    clock.now += 901
    labels_ = [d.observe_scope_error(("fp1", "", "proj_bad", "api.openai.com"), READ, "GET /x", "c2", False).label
               for _ in range(3)]
    assert labels_ == [V.UNKNOWN, V.UNKNOWN, V.NEVER_GRANTED]


def test_the_other_context_is_masked_like_the_values_sent():
    d = Diagnosis(clock=Clock())
    key = "sk-proj-" + "Q7w" * 16
    d.observe_success(("fp1", "", key[8:40], "h"), (READ,), "GET /x", "c1")  # a key pasted into the project
    v = d.observe_scope_error(("fp1", "", "proj_bad", "h"), READ, "GET /x", "c2", False)
    assert v.label == V.CONTEXT_MISMATCH
    shown = v.span_attributes("c2", key)[A.DIAGNOSIS_LAST_SUCCESS_PROJECT]
    assert key[8:16] not in shown and key[20:28] not in shown


def test_context_memory_is_bounded():
    d = Diagnosis(max_entries=64)
    for i in range(5_000):
        d.observe_success((f"fp{i}", "", f"p{i}", "h"), (READ, "model.request"), f"GET /x{i}", f"c{i}")
    assert len(d._contexts) <= 64


def test_context_mismatch_live_when_one_client_sends_the_wrong_project(fake, key, instrumentor, telemetry, caplog):
    """One key, two projects: the client with the right project passes, the other fails at once as configuration,
    naming the project that passed (as a pod whose OPENAI_PROJECT_ID points at the wrong project would)."""
    good = openai.OpenAI(api_key=key, project="proj_ok", base_url=fake.base_url, max_retries=0)
    drifted = openai.OpenAI(api_key=key, project="proj_bad", base_url=fake.base_url, max_retries=0)
    good.beta.threads.runs.list(THREAD)
    fake.script("GET", "/runs", 401, {"error": {"message": "Missing scopes: api.threads.read."}}, times=3)
    caplog.set_level("INFO", logger="otel_openai_scopes.diagnosis")
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            drifted.beta.threads.runs.list(THREAD)
    errors = scope_error_spans(telemetry)
    assert labels(errors) == [V.CONTEXT_MISMATCH] * 3
    first = errors[0].attributes
    assert first[A.PROJECT] == "proj_bad" and first[A.DIAGNOSIS_LAST_SUCCESS_PROJECT] == "proj_ok"
    assert first[A.DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT] is False
    assert telemetry.metric_sum(A.METRIC_SCOPE_ERRORS, **{A.DIAGNOSIS: V.CONTEXT_MISMATCH}) == 3
    assert any(V.CONTEXT_MISMATCH in r.getMessage() for r in caplog.records)


def test_sentences_say_what_to_do_and_name_both_contexts():
    clock = Clock()
    d = Diagnosis(clock=clock)
    lacks = d.observe_scope_error(CRED, "api.responses.write", "POST /responses", "c1", False, lacks=True)
    text = lacks.sentence("api.responses.write", False)
    assert "re-authorise" in text and "api.responses.write" in text
    d.observe_success(("fp1", "org-1", "proj_ok", "h"), (READ,), "GET /x", "c-ok")
    mismatch = d.observe_scope_error(("fp1", "org-1", "proj_bad", "h"), READ, "GET /x", "c-bad", False)
    text = mismatch.sentence(READ)
    assert "organization org-1, project proj_ok" in text and "c-ok" in text and "send the organization" in text
    unknown = d.observe_scope_error(("fp2", "", "", "h"), READ, "GET /x", "c1", False)
    assert "role of the token's subject" in unknown.sentence(READ, True)
    assert unknown.sentence(READ, None) == V.meaning(V.UNKNOWN).action


def test_last_success_is_read_only_and_bounded_by_the_window():
    clock = Clock()
    d = Diagnosis(window=60, clock=clock)
    assert d.last_success(CRED, READ, "GET /x") == 0.0
    d.observe_success(CRED, (READ,), "GET /x", "c1")
    t = clock()
    clock.now += 30
    assert d.last_success(CRED, READ, "GET /other") == t and d.last_success(CRED, "other.scope", "GET /x") == t
    before = len(d)
    clock.now += 31
    assert d.last_success(CRED, READ, "GET /x") == 0.0 and len(d) == before
