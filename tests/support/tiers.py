"""The test tiers, each a folder of tests/ and a pytest marker of the same name (``pytest -m unit``):

    unit         pure functions: no server, no subprocess worth mentioning; hypothesis properties
    integration  the real openai SDK against the fake server on loopback, the real OpenTelemetry SDK in-process
    cli          the commands and ``opentelemetry-instrument`` as subprocesses, as a user runs them
    stack        the real Collector, Jaeger and Prometheus (tests/support/stack) with the shipped configs and rules
    config       the shipped configs and rules linted: YAML structure, promtool, ``otelcol validate``, manifests

``one_lane`` marks tests whose behaviour does not depend on the openai SDK's version (no SDK call, or none whose
outcome the test reads): the old lane (``nox -s tests-3.9``) skips them.
"""

from __future__ import annotations

from pathlib import Path

TIERS = ("unit", "integration", "cli", "stack", "config")
TESTS = Path(__file__).resolve().parents[1]


def tier_of(path: Path) -> str:
    """A test file's tier: its folder under tests/."""
    parts = Path(path).resolve().relative_to(TESTS).parts
    if len(parts) > 1 and parts[0] in TIERS:
        return parts[0]
    return _BEFORE_THE_MOVE.get(Path(path).stem, "integration")


#: Until the files move into their folders: file -> tier.
_BEFORE_THE_MOVE = {
    **dict.fromkeys(["test_fingerprint", "test_terminal", "test_scope_errors", "test_endpoints", "test_masking",
                     "test_tokens", "test_readme", "test_scope_map_sdk", "test_report"], "unit"),
    **dict.fromkeys(["test_instrumentation", "test_diagnosis", "test_faults", "test_fork", "test_hostile",
                     "test_leaks", "test_load", "test_memory", "test_settings", "test_logfire", "test_fake_server",
                     "test_fake_tokens", "test_doctor"], "integration"),
    **dict.fromkeys(["test_cli", "test_end_to_end", "test_exporter", "test_report_hostile",
                     "test_report_credentials", "test_report_fleet", "test_report_html", "test_fleet_install"], "cli"),
    **dict.fromkeys(["test_stack", "test_stack_script", "test_stack_scrub", "test_report_collector_file",
                     "test_fleet_alert_timing", "test_fleet_faults", "test_fleet_scaleout", "test_fleet_verdict"],
                    "stack"),
    **dict.fromkeys(["test_collector_config", "test_fleet_rules", "test_fleet_k8s", "test_stack_validate"],
                    "config"),
}
