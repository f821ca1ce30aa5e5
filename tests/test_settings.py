"""Settings never stop the app: a bad value (environment or constructor argument) logs one warning naming the
variable and the accepted form and the default is used; a variable that looks like ours but is not is named with
the closest known one; the instrumentor always loads, also under the real ``opentelemetry-instrument``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from otel_openai_scopes import OpenAIScopesInstrumentor
from otel_openai_scopes import attributes as A
from otel_openai_scopes.config import EXPORTER_FILE_PATH_ENV, Settings, parse_setting
from otel_openai_scopes.scope_map import build_matcher
from otel_openai_scopes.tools import otlp_file
from tests.support.apps import APP, BIN, console_spans
from tests.support.keys import leaked_pieces, make_key

P = "OTEL_INSTRUMENTATION_OPENAI_SCOPES_"
DEFAULTS = Settings()


def _load(caplog, overrides=None, **env):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_openai_scopes"):
        settings = Settings.load(overrides, environ=env)
    return settings, [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes"]


@pytest.mark.parametrize("name,value,field,accepted", [
    ("DIAGNOSIS_WINDOW", "15m", "diagnosis_window", "a number of seconds > 0"),
    ("DIAGNOSIS_WINDOW", "-5", "diagnosis_window", "a number of seconds > 0"),
    ("DIAGNOSIS_WINDOW", "nan", "diagnosis_window", "a number of seconds > 0"),
    ("DIAGNOSIS_WINDOW", "inf", "diagnosis_window", "a number of seconds > 0"),
    ("MAX_CLIENTS", "10k", "max_clients", "a whole number >= 1"),
    ("MAX_CLIENTS", "-1", "max_clients", "a whole number >= 1"),
    ("MAX_METRIC_KEYS", "0", "max_metric_keys", "a whole number >= 1"),
    ("MAX_METRIC_TEMPLATES", "2.5", "max_metric_templates", "a whole number >= 1"),
    ("DIAGNOSIS_MAX_ENTRIES", "lots", "diagnosis_max_entries", "a whole number >= 1"),
    ("CAPTURE_KEY_HINT", "flase", "capture_key_hint", "true or false"),
    ("CAPTURE_CLIENT_ORIGIN", "2", "capture_client_origin", "true or false"),
    ("SCOPE_MAP", "/no/such/scope_map.tsv", "scope_map", "No such file or directory"),
])
def test_a_bad_variable_warns_once_and_the_default_is_used(caplog, name, value, field, accepted):
    settings, messages = _load(caplog, **{P + name: value})
    assert getattr(settings, field) == getattr(DEFAULTS, field)
    assert len(messages) == 1, messages
    assert P + name in messages[0] and accepted in messages[0] and "using" in messages[0]


@pytest.mark.parametrize("content,suffix,why", [
    ("this is not a scope map\n", ".tsv", "starts with the columns"),
    ("method\ttemplate\tscopes\nGET\tno-slash\ta.read\n", ".tsv", "template must be a path"),
    ('{"no-space-key": ["x"]}', ".json", "METHOD /path/template"),
    ("[1, 2]", ".json", ""),
    ("{not json", ".json", ""),
    ('{"GET /v1/x": 5}', ".json", ""),
])
def test_a_malformed_scope_map_file_warns_once_and_the_packaged_map_is_used(caplog, tmp_path, content, suffix, why):
    path = tmp_path / f"map{suffix}"
    path.write_text(content)
    settings, messages = _load(caplog, **{P + "SCOPE_MAP": str(path)})
    assert settings.scope_map is None
    assert len(messages) == 1 and P + "SCOPE_MAP" in messages[0] and "scope map file" in messages[0], messages
    assert why in messages[0] and "the packaged scope map only" in messages[0]


def test_good_values_parse_without_a_word(caplog, tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("method\ttemplate\toperation\tscopes\nGET\t/v1/widgets\twidgets.list\tw.read\n")
    settings, messages = _load(caplog, **{P + "CAPTURE_KEY_HINT": "FALSE", P + "CAPTURE_CLIENT_ORIGIN": "0",
                                          P + "MAX_CLIENTS": " 10_000 ", P + "DIAGNOSIS_WINDOW": "1.5",
                                          P + "DIAGNOSIS_MAX_ENTRIES": "+7", P + "SCOPE_MAP": str(path),
                                          P + "FINGERPRINT_SECRET": "s3cret", P + "MAX_METRIC_KEYS": "",
                                          "OTEL_SERVICE_NAME": "x", "OTEL_OPENAI_SCOPES_CACHE": "/tmp/c",
                                          "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
                                          "OTEL_INSTRUMENTATION_OPENAI_CAPTURE_CONTENT": "true",
                                          EXPORTER_FILE_PATH_ENV: "/tmp/x.jsonl"})
    assert messages == []
    assert (settings.capture_key_hint, settings.capture_client_origin, settings.max_clients, settings.diagnosis_window,
            settings.diagnosis_max_entries, settings.scope_map, settings.fingerprint_secret,
            settings.max_metric_keys) == (False, False, 10_000, 1.5, 7, str(path), "s3cret", 100)


@pytest.mark.parametrize("overrides,field,accepted", [
    ({"diagnosis_window": "15m"}, "diagnosis_window", "a number of seconds > 0"),
    ({"diagnosis_window": True}, "diagnosis_window", "a number of seconds > 0"),
    ({"max_clients": -3}, "max_clients", "a whole number >= 1"),
    ({"max_clients": "10k"}, "max_clients", "a whole number >= 1"),
    ({"max_metric_keys": 2.0}, "max_metric_keys", "a whole number >= 1"),
    ({"capture_key_hint": "flase"}, "capture_key_hint", "true or false"),
    ({"capture_key_hint": 3}, "capture_key_hint", "true or false"),
    ({"scope_map": "/no/such/file.yaml"}, "scope_map", "No such file or directory"),
    ({"fingerprint_secret": ""}, "fingerprint_secret", "a non-empty string"),
])
def test_a_bad_constructor_argument_warns_once_and_the_default_is_used(caplog, overrides, field, accepted):
    settings, messages = _load(caplog, overrides)
    assert getattr(settings, field) == getattr(DEFAULTS, field)
    assert len(messages) == 1 and f"argument {field}" in messages[0] and accepted in messages[0], messages


def test_arguments_win_over_variables_and_good_arguments_pass(caplog):
    settings, messages = _load(caplog, {"max_clients": 5, "capture_key_hint": "no", "diagnosis_window": 30},
                               **{P + "MAX_CLIENTS": "7"})
    assert messages == [] and (settings.max_clients, settings.capture_key_hint, settings.diagnosis_window) == \
        (5, False, 30.0)


@pytest.mark.parametrize("name,closest", [
    (P + "CAPTURE_KEYHINT", P + "CAPTURE_KEY_HINT"),
    ("OTEL_EXPORTER_OPENAI_SCOPE_FILE_PATH", "OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH"),
    ("OTEL_INSTRUMENTATION_OPENAI_SCOEPS_MAX_CLIENTS", P + "MAX_CLIENTS"),
    (P + "DIAGNOSIS_WINDOWS", P + "DIAGNOSIS_WINDOW"),
    ("OTEL_INSTRUMENTATION_OPENAI_SCOPES_SCOPEMAP_FILE", P + "SCOPE_MAP"),
])
def test_a_variable_that_looks_like_ours_names_the_closest_known_one(caplog, name, closest):
    settings, messages = _load(caplog, **{name: "1"})
    assert settings == DEFAULTS
    assert len(messages) == 1 and name in messages[0] and f"did you mean {closest}?" in messages[0], messages


def test_an_unknown_argument_names_the_closest_setting(caplog):
    settings, messages = _load(caplog, {"capture_keyhint": False, "zzz": 1})
    assert settings == DEFAULTS
    assert messages == ["otel-openai-scopes: ignoring unknown argument 'capture_keyhint' (did you mean "
                        "'capture_key_hint'?)", "otel-openai-scopes: ignoring unknown argument 'zzz'"]


def test_warnings_never_quote_a_secret(caplog):
    key = make_key()
    _, messages = _load(caplog, {"fingerprint_secret": 12345},
                        **{P + "SCOPE_MAP": key, P + "MAX_CLIENTS": key, P + "DIAGNOSIS_WINDOW": "Bearer " + key})
    assert len(messages) == 4
    assert leaked_pieces(key, "\n".join(messages)) == [] and "12345" not in "\n".join(messages)


def test_the_exporter_variable_is_the_one_the_exporter_reads():
    assert otlp_file.PATH_ENV == EXPORTER_FILE_PATH_ENV and EXPORTER_FILE_PATH_ENV in Settings.known_variables()


def test_parse_setting_covers_every_field():
    """Every field (a field another change adds too) has a rule: its default parses as itself."""
    for name, default in vars(DEFAULTS).items():
        if default is not None:
            assert parse_setting(name, str(default).lower() if isinstance(default, bool) else str(default),
                                 default) == (default, ""), name


def test_a_bad_mapping_override_warns_and_the_packaged_map_applies(caplog):
    with caplog.at_level(logging.WARNING, logger="otel_openai_scopes"):
        matcher = build_matcher({"no-space-key": ["x"]}, {"GET /v1/widgets": ["w.read"]})
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes"]
    assert len(messages) == 1 and "scope map override mapping not used" in messages[0]
    assert matcher.match("GET", "/models").scopes == ("api.model.read", "model.read")
    assert matcher.match("GET", "/widgets").scopes == ("w.read",)


def test_the_instrumentor_loads_with_every_bad_value(fake, telemetry, monkeypatch, caplog):
    key = make_key()
    fake.grant(key)
    for name, value in [("DIAGNOSIS_WINDOW", "15m"), ("MAX_CLIENTS", "10k"), ("SCOPE_MAP", "/no/such/map.tsv"),
                        ("CAPTURE_KEY_HINT", "flase"), ("MAX_METRIC_KEYS", "-1")]:
        monkeypatch.setenv(P + name, value)
    import openai

    inst = OpenAIScopesInstrumentor(diagnosis_max_entries="many", scope_map={"bad key": []})
    with caplog.at_level(logging.WARNING, logger="otel_openai_scopes"):
        inst.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0).models.list()
    finally:
        inst.uninstrument()
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_openai_scopes"]
    assert len(messages) == 7, messages
    span = telemetry.only_span()
    assert span.attributes[A.OPERATION] == "models.list" and span.attributes[A.KEY_HINT].endswith(key[-4:])


def test_opentelemetry_instrument_still_instruments_with_bad_values(fake, tmp_path):
    """The real ``opentelemetry-instrument``: a bad value used to make ``instrument()`` raise, so it logged
    "Failed to auto initialize" and the app ran without this (and every later) instrumentation."""
    key = make_key()
    fake.grant(key, scopes=["model.request", "api.model.request"])
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {**os.environ, "OPENAI_API_KEY": key, "FAKE_BASE_URL": fake.base_url, "OTEL_TRACES_EXPORTER": "console",
           "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "bad-settings-app",
           P + "DIAGNOSIS_WINDOW": "15m", P + "MAX_CLIENTS": "10k", P + "SCOPE_MAP": str(tmp_path / "missing.tsv"),
           P + "CAPTURE_KEY_HINT": "flase", "OTEL_EXPORTER_OPENAI_SCOPE_FILE_PATH": str(tmp_path / "x.jsonl")}
    out = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(app)], capture_output=True,
                         text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Failed to" not in out.stderr, out.stderr[-3000:]
    ours = [s for s in console_spans(out.stdout) if s["attributes"].get(A.OPERATION)]
    assert [s["name"] for s in ours] == ["POST /v1/chat/completions", "GET /v1/threads/{thread_id}/runs"]
    assert ours[1]["attributes"][A.SCOPE_MISSING] == ["api.threads.read"]
    assert ours[0]["attributes"][A.KEY_HINT].endswith(key[-4:])  # capture_key_hint kept its default, true
    for name in ("DIAGNOSIS_WINDOW", "MAX_CLIENTS", "SCOPE_MAP", "CAPTURE_KEY_HINT"):
        assert out.stderr.count(P + name) == 1, (name, out.stderr[-3000:])
    assert "did you mean OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH?" in out.stderr
    assert leaked_pieces(key, out.stdout + out.stderr) == []
