"""The README stays true: its commands exist, and its tables name every attribute, metric and setting."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from otel_openai_scopes import attributes as A
from otel_openai_scopes.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_exist():
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert (ROOT / "scripts" / "demo.sh").exists() and (ROOT / "scripts" / "test.sh").exists()
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_every_attribute_event_and_metric_is_documented():
    names = set(A.SPAN_ATTRIBUTES) | {A.EVENT_ATTEMPT, A.EVENT_ATTEMPT_RETRY, A.EVENT_DIAGNOSIS_CHANGED,
                                      A.DIAGNOSIS_PREVIOUS, A.SCOPE, A.METRIC_REQUESTS, A.METRIC_SCOPE_ERRORS,
                                      A.METRIC_DURATION, A.FINGERPRINT_OVERFLOW} | set(A.DIAGNOSES)
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, missing


def test_every_setting_is_documented():
    for f in fields(Settings):
        assert f"`{f.name}`" in README and f"`{Settings.env_name(f.name)}`" in README, f.name


def test_entry_point_name_matches_pyproject():
    assert 'openai_scopes = "otel_openai_scopes:OpenAIScopesInstrumentor"' in (ROOT / "pyproject.toml").read_text()
    assert "entry point name: openai_scopes" in README
