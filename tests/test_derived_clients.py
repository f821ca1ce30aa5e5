"""Derived clients (issue 15): a ``copy()``/``with_options()`` client given other credentials than its parent's fails
a scope its parent's credentials passed. The live sentence names the parent, the line of the copy and the changed
fields, and tells the rebinding bug (a shared client replaced by a tenant copy) from an intentional per-tenant
client by whether the parent's credentials passed after the copy was made. The verdict stays the copy's own
(``unknown`` then ``never_granted``): never ``client_mutated``, which means a client whose own fields changed.
Both SDK ends: ``with_options`` exists on both.
"""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.exporter import OpenAIScopesFileSpanExporter
from otel_openai_scopes.safety import reset_reported
from tests.support.keys import make_key

THREAD = "thread_1"
READ = "api.threads.read"
TENANT_SCOPES = ["model.request", "api.model.read", "model.read"]


def _keys(fake) -> tuple[str, str]:
    shared, tenant = make_key(), make_key()
    fake.grant(shared)
    fake.grant(tenant, scopes=TENANT_SCOPES)
    return shared, tenant


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes.diagnosis"]


def _copy_line() -> int:
    return inspect.currentframe().f_back.f_lineno + 1  # type: ignore[union-attr]


def _rebind(fake, shared_key: str, tenant_key: str) -> tuple[int, int]:
    """The rebinding bug: a task replaces the module's shared client with a tenant copy and dies; every later
    call runs on the tenant key. Returns (line of the copy, calls that failed)."""
    client = openai.OpenAI(api_key=shared_key, base_url=fake.base_url, max_retries=0)
    client.beta.threads.runs.list(THREAD)
    client.beta.threads.runs.list(THREAD)
    line = _copy_line()
    client = client.with_options(api_key=tenant_key)
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError):
            client.beta.threads.runs.list(THREAD)
    return line, 4


def test_a_shared_client_rebound_by_a_task_names_parent_line_and_fields(fake, instrumentor, telemetry, caplog):
    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    shared, tenant = _keys(fake)
    line, failed = _rebind(fake, shared, tenant)
    spans = telemetry.spans()
    parent_id = spans[0].attributes[A.CLIENT_ID]
    errors = [s for s in spans if s.attributes.get(A.SCOPE_ERROR)]
    assert len(errors) == failed
    assert [s.attributes[A.DIAGNOSIS] for s in errors] == [V.UNKNOWN, V.UNKNOWN, V.NEVER_GRANTED, V.NEVER_GRANTED]
    copy = errors[0].attributes
    assert copy[A.CLIENT_PARENT_ID] == parent_id and copy[A.CLIENT_COPY_CHANGED] == ("api_key",)
    assert copy[A.CLIENT_ORIGIN].endswith(f"test_derived_clients.py:{line}")
    assert all(A.CLIENT_MUTATED not in s.attributes for s in spans)
    lines = _lines(caplog)
    assert len(lines) == 2  # none -> unknown, unknown -> never_granted
    for text in lines:
        assert f"is a copy of client {parent_id}" in text and f"test_derived_clients.py:{line}" in text
        assert "with api_key changed" in text and f"passed {READ}" in text
        assert "before the copy was made, and not since" in text and "that line is the bug" in text
        assert shared not in text and tenant not in text


def test_an_intentional_per_tenant_client_says_the_tenant_key_lacks_the_scope(fake, instrumentor, telemetry,
                                                                            caplog):
    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    shared, tenant = _keys(fake)
    parent = openai.OpenAI(api_key=shared, base_url=fake.base_url, max_retries=0)
    line = _copy_line()
    per_tenant = parent.with_options(api_key=tenant)
    for _ in range(3):
        parent.beta.threads.runs.list(THREAD)  # the parent keeps working alongside the copy
        with pytest.raises(openai.AuthenticationError):
            per_tenant.beta.threads.runs.list(THREAD)
    errors = [s for s in telemetry.spans() if s.attributes.get(A.SCOPE_ERROR)]
    assert [s.attributes[A.DIAGNOSIS] for s in errors] == [V.UNKNOWN, V.UNKNOWN, V.NEVER_GRANTED]
    lines = _lines(caplog)
    assert len(lines) == 2
    for text in lines:
        assert f"test_derived_clients.py:{line}" in text and "with api_key changed" in text
        assert "after the copy was made (the parent kept working alongside it)" in text
        assert f"per-tenant client whose tenant key lacks {READ}" in text and "the bug" not in text


@pytest.mark.skipif(not hasattr(openai.OpenAI, "_refresh_api_key"), reason="openai < 2 has no key providers")
def test_a_parent_with_a_key_provider_is_looked_up_by_what_it_sent(fake, instrumentor, telemetry, caplog):
    """A parent refreshing its token through a provider has no fixed key: the credential it last sent (its token
    identity's fingerprint, the same across refreshes) is what its copy's sentence looks up."""
    from token_helpers import identity, refresh

    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    claims = identity(scp=[READ, *TENANT_SCOPES])
    refreshes = iter(range(100))
    parent = openai.OpenAI(api_key=lambda: refresh(claims, next(refreshes)), base_url=fake.base_url, max_retries=0)
    _, tenant = _keys(fake)
    line = _copy_line()
    per_tenant = parent.with_options(api_key=tenant)
    for _ in range(2):
        parent.beta.threads.runs.list(THREAD)  # a fresh token each call, one identity
        with pytest.raises(openai.AuthenticationError):
            per_tenant.beta.threads.runs.list(THREAD)
    (text,) = _lines(caplog)[:1]
    assert f"test_derived_clients.py:{line}" in text and "with api_key changed" in text
    assert "per-tenant client whose tenant key lacks" in text


def test_a_copy_whose_parent_never_passed_the_scope_says_nothing_of_it(fake, instrumentor, telemetry, caplog):
    caplog.set_level(logging.INFO, logger="otel_openai_scopes.diagnosis")
    shared, tenant = _keys(fake)
    parent = openai.OpenAI(api_key=shared, base_url=fake.base_url, max_retries=0)
    parent.models.list()  # the parent passed another scope only
    copy = parent.with_options(api_key=tenant)
    with pytest.raises(openai.AuthenticationError):
        copy.beta.threads.runs.list(THREAD)
    assert [text for text in _lines(caplog) if "is a copy of" in text] == []


def test_the_rebinding_bug_flows_from_the_live_file_to_report(fake, tmp_path):
    """The runtime's own ``openai_scopes_file`` exporter, then ``report --json`` on that file: the window names the
    copy, its parent, the line and the pattern, with the verdict the copy's own history gives."""
    out = tmp_path / "spans.jsonl"
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OpenAIScopesFileSpanExporter(str(out))))
    reset_reported()
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=tp)
    try:
        shared, tenant = _keys(fake)
        line, _ = _rebind(fake, shared, tenant)
    finally:
        inst.uninstrument()
        tp.shutdown()
    run = subprocess.run([sys.executable, "-m", "otel_openai_scopes.tools.cli", "report", "--json", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    (window,) = json.loads(run.stdout)["windows"]
    assert window["diagnosis"] == V.NEVER_GRANTED
    (derived,) = window["derived_clients"]
    assert derived["pattern"] == "shared_client_rebound" and derived["changed"] == ["api_key"]
    assert derived["origin"].endswith(f"test_derived_clients.py:{line}")
    assert shared not in run.stdout and tenant not in run.stdout
