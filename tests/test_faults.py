"""Never break the app: force each internal step to fail; the user's call behaves exactly as uninstrumented,
and each failure is logged once, not per call."""

from __future__ import annotations

import logging
from dataclasses import replace

import openai
import pytest

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import wrappers as wrappers_module
from otel_openai_scopes.safety import reset_reported
from otel_openai_scopes.steps import DEFAULT_STEPS
from tests.support.keys import make_key


class Boom(Exception):
    pass


def boom(*args, **kwargs):
    raise Boom("internal failure sk-proj-SHOULDNOTLEAK0000000000000000000000")


def run_calls(fake, key):
    """Success, scope 401, stream, retry: return a comparable record of what the app saw."""
    c = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=1)
    seen = []
    seen.append(c.chat.completions.create(model="m", messages=[]).choices[0].message.content)
    try:
        c.beta.threads.runs.list("thread_x")
    except openai.APIStatusError as exc:
        seen.append((type(exc).__name__, exc.status_code, exc.message))
    chunks = [ch.choices[0].delta.content for ch in c.chat.completions.create(model="m", messages=[], stream=True,
                                                                              max_tokens=3)]
    seen.append(chunks)
    fake.script("GET", "/models", 429, {"error": {"message": "slow"}}, headers={"retry-after-ms": "1"})
    seen.append([m.id for m in c.models.list().data])
    return seen


# Faults in the recorder's steps go in through its seam (``steps=``), as the benchmarks' ablations do.
STEP_FAULTS = {
    "client view": ("view_client",),
    "endpoint resolution": ("resolve_route",),
    "header reading": ("read_sent", "response_attributes"),
    "credential description": ("describe_sent",),
    "mutation check": ("mutated_fields",),
    "outcome": ("outcome",),
    "error parsing": ("parse_error",),
    "diagnosis step": ("diagnose",),
    "metric attributes": ("metric_attributes",),
}
# Faults in what the recorder is given or calls.
PATCH_FAULTS = {
    "endpoint matching": lambda inst, mp: mp.setattr(inst.recorder, "matcher", type("M", (), {"match": boom})()),
    "span start": lambda inst, mp: mp.setattr(inst.recorder.tracer, "start_span", boom),
    "fingerprinting": lambda inst, mp: mp.setattr(inst.recorder.credentials, "describe", boom),
    "attempt hook": lambda inst, mp: mp.setattr(inst.recorder, "attempt_started", boom),
    "diagnosis": lambda inst, mp: (mp.setattr(inst.recorder.diagnosis, "observe_scope_error", boom),
                                   mp.setattr(inst.recorder.diagnosis, "observe_success", boom)),
    "metric recording": lambda inst, mp: mp.setattr(inst.recorder.instruments.requests, "add", boom),
    "client registry": lambda inst, mp: mp.setattr(inst.recorder.registry, "register", boom),
    "stream proxy": lambda inst, mp: mp.setattr(wrappers_module, "SyncStreamProxy", boom),
}


@pytest.mark.parametrize("fault", [*STEP_FAULTS, *PATCH_FAULTS])
def test_internal_failure_leaves_the_call_untouched(fault, fake, telemetry, monkeypatch, caplog):
    key = make_key()
    fake.grant(key, scopes=["model.request", "api.model.request", "api.model.read", "model.read"])
    baseline = run_calls(fake, key)

    reset_reported()
    steps = replace(DEFAULT_STEPS, **dict.fromkeys(STEP_FAULTS.get(fault, ()), boom))
    inst = OpenAIScopesInstrumentor(steps=steps)
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        if fault in PATCH_FAULTS:
            PATCH_FAULTS[fault](inst, monkeypatch)
        caplog.set_level(logging.WARNING, logger="otel_openai_scopes")
        first = run_calls(fake, key)
        second = run_calls(fake, key)
    finally:
        monkeypatch.undo()
        inst.uninstrument()
    assert first == baseline and second == baseline
    internal = [r for r in caplog.records if r.name == "otel_openai_scopes" and "internal error" in r.getMessage()]
    places = [r.args[0] for r in internal]
    assert internal, "the failure was not logged"
    assert len(places) == len(set(places)), f"logged more than once per place: {places}"
    assert all("SHOULDNOTLEAK" not in r.getMessage() for r in internal)


def test_broken_instrumentation_does_not_break_async_calls(fake, telemetry, monkeypatch):
    import asyncio

    key = make_key()
    fake.grant(key)
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        monkeypatch.setattr(inst.recorder.credentials, "describe", boom)
        monkeypatch.setattr(inst.recorder, "attempt_started", boom)

        async def go():
            ac = openai.AsyncOpenAI(api_key=key, base_url=fake.base_url)
            r = await ac.chat.completions.create(model="m", messages=[])
            chunks = [c async for c in await ac.chat.completions.create(model="m", messages=[], stream=True)]
            await ac.close()
            return r.choices[0].message.content, len(chunks)

        assert asyncio.run(go()) == ("Hello from the fake server.", 3)
    finally:
        monkeypatch.undo()
        inst.uninstrument()
