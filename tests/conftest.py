"""Shared fixtures: the fake OpenAI server on loopback, real OTel SDK providers with in-memory readers,
and the instrumentation switched on for one test at a time. Helpers live in tests/support/."""

from __future__ import annotations

import os

import pytest

from otel_openai_scopes.tools.fake_server import FakeOpenAI
from tests.support.keys import make_key
from tests.support.telemetry import Telemetry
from tests.support.tiers import TIERS, is_slow, tier_of

# Hermetic runs: tests read the CLI's output through pipes and configure telemetry themselves, so nothing
# in the caller's environment may switch rich into terminal mode (colours, 80-column wraps), point the SDK
# at another server or key, or configure OpenTelemetry. Subprocesses inherit this cleaned environment.
_TERMINAL_VARS = {"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "CLICOLOR_FORCE"}
# OTEL_OPENAI_SCOPES_* is this project's own test configuration (stack binaries and cache, tests/stack.py), kept.
for _name in [n for n in os.environ if (n in _TERMINAL_VARS or n.startswith(("OTEL_", "OPENAI_", "AZURE_OPENAI_")))
              and not n.startswith("OTEL_OPENAI_SCOPES_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def fake_server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_server):
    fake_server.reset()
    fake_server.keys.clear()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def telemetry():
    return Telemetry()


@pytest.fixture
def instrumentor(telemetry):
    inst = telemetry.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture
def key(fake):
    k = make_key()
    fake.grant(k, organization="org-test0000000000000000001", project="proj_test000000000000000001")
    return k


@pytest.fixture
def client(fake, key, instrumentor):
    import openai

    c = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=2)
    yield c
    c.close()


@pytest.fixture
def async_client(fake, key, instrumentor):
    import openai

    return openai.AsyncOpenAI(api_key=key, base_url=fake.base_url, max_retries=2)


# ---- tiers: a marker on every test (tests/support/tiers.py), and the time each tier took ----------------------------

_TIER_OF: dict[str, str] = {}
_TIER_SECONDS: dict[str, float] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        stem, name = item.path.stem, getattr(item, "originalname", item.name)
        own = [m.name for m in item.iter_markers() if m.name in TIERS]
        tier = own[0] if own else tier_of(stem, name)
        if not own:
            item.add_marker(getattr(pytest.mark, tier))
        if is_slow(stem, name):
            item.add_marker(pytest.mark.slow)
        _TIER_OF[item.nodeid] = tier


def pytest_runtest_logreport(report):
    tier = _TIER_OF.get(report.nodeid, "other")
    _TIER_SECONDS[tier] = _TIER_SECONDS.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _TIER_SECONDS:
        times = ", ".join(f"{tier} {_TIER_SECONDS[tier]:.0f} s" for tier in (*TIERS, "other") if tier in _TIER_SECONDS)
        terminalreporter.write_line(f"time per tier (setup + call + teardown): {times}")
