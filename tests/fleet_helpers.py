"""The fleet tests' helpers in one namespace (``import fleet_helpers as fh``), from :mod:`tests.support` (fleet_app,
rules, stack, otlp, ports)."""

from tests.support.fleet_app import RESTRICTED_SCOPES, THREAD, THREADS_READ, App, AppSummary, Call, Plan  # noqa: F401
from tests.support.otlp import span_summaries as otlp_json_spans  # noqa: F401
from tests.support.ports import hold, release  # noqa: F401
from tests.support.rules import (  # noqa: F401
    RUNBOOK_URL,
    SCRAPE_INTERVAL,
    active_at,
    fast_rules,
    shipped_expr,
    shipped_prometheus,
)
from tests.support.stack import Alertmanager, require_tool  # noqa: F401
from tests.support.stack.collector import Sink  # noqa: F401
from tests.support.stack.jaeger import DurableJaeger  # noqa: F401
from tests.support.stack.paths import RULES  # noqa: F401
from tests.support.stack.prometheus import ALERTMANAGER_CONFIG  # noqa: F401


def require_promtool() -> str:
    return require_tool("promtool")


def alertmanager_binary() -> str:
    return require_tool("alertmanager")


def project_scoped_fake():  # type: ignore[no-untyped-def]
    """Kept for tests on other branches: the fake server denies per project natively (``fake.deny(key, project,
    scopes)``); use ``FakeOpenAI()``."""
    from otel_openai_scopes.tools.fake_server import FakeOpenAI

    return FakeOpenAI()

