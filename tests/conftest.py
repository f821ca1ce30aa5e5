"""Shared fixtures: the fake OpenAI server on loopback, real OTel SDK providers with in-memory readers,
and the instrumentation switched on for one test at a time."""

from __future__ import annotations

import os
import secrets
import string

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes.tools.fake_server import FakeOpenAI
from otel_openai_scopes.safety import reset_reported

_ALPHABET = string.ascii_letters + string.digits

# Hermetic runs: tests read the CLI's output through pipes and configure telemetry themselves, so nothing
# in the caller's environment may switch rich into terminal mode (colours, 80-column wraps), point the SDK
# at another server or key, or configure OpenTelemetry. Subprocesses inherit this cleaned environment.
_TERMINAL_VARS = {"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "CLICOLOR_FORCE"}
# OTEL_OPENAI_SCOPES_* is this project's own test configuration (stack binaries and cache, tests/stack.py), kept.
for _name in [n for n in os.environ if (n in _TERMINAL_VARS or n.startswith(("OTEL_", "OPENAI_", "AZURE_OPENAI_")))
              and not n.startswith("OTEL_OPENAI_SCOPES_")]:
    del os.environ[_name]


def make_key(prefix: str = "sk-proj-", n: int = 48) -> str:
    """A random, realistic-looking key: random so any leaked substring is unmistakable."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


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


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self):
        return list(self.exporter.get_finished_spans())

    def only_span(self):
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metric_points(self, name: str):
        data = self.reader.get_metrics_data()
        points = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        points.extend(m.data.data_points)
        return points

    def metric_sum(self, name: str, **attrs) -> float:
        return sum(
            p.value for p in self.metric_points(name)
            if all(p.attributes.get(k.replace("__", ".")) == v for k, v in attrs.items())
        )


@pytest.fixture
def telemetry():
    return Telemetry()


@pytest.fixture
def instrumentor(telemetry):
    reset_reported()
    inst = OpenAIScopesInstrumentor()
    inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
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
