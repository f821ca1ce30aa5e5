"""The fleet verdict rules are load-bearing in every part (issue 14).

Each mutation below breaks one join, exclusion, branch or timing setting of one shipped alert rule
(collector-config/alerts/prometheus-rules.yaml); the promtool unit tests (prometheus-rules.test.yaml) must
notice it. Each mutation names the unit-test groups meant to catch it: promtool runs only those (a few
seconds instead of the whole file), so a mutation caught only by accident elsewhere still fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import fleet_helpers as fh
import pytest
import yaml

from otel_openai_scopes import verdicts

TESTS = fh.RULES.parent / "prometheus-rules.test.yaml"
PS, CM, MUT = "OpenAIScopeErrorPlatformSide", "OpenAIScopeContextMismatch", "OpenAIScopeErrorClientMutated"
TUPLE = "openai_key_fingerprint, openai_organization, openai_project, server_address, http_request_method, url_template"
PS_EXCLUDED = 'openai_scope_error_diagnosis!~"client_mutated|token_lacks_scope|context_mismatch"'
CM_EXCLUDED = 'openai_scope_error_diagnosis!~"client_mutated|token_lacks_scope"'
NOT_PS = ["fleet-not-platform-side"]
DRIFT = ["fleet-context-mismatch"]

# id -> (alert, old text of its expression (every occurrence is replaced), new text, unit-test groups)
MUTATIONS = {
    # PlatformSide: the same key TUPLE (what the live diagnosis joins on) and the same endpoint.
    "ps-join-organization": (PS, f"and on ({TUPLE})", f"and on ({TUPLE.replace('openai_organization, ', '')})", DRIFT),
    "ps-join-project": (PS, f"and on ({TUPLE})", f"and on ({TUPLE.replace('openai_project, ', '')})", DRIFT),
    "ps-join-host": (PS, f"and on ({TUPLE})", f"and on ({TUPLE.replace('server_address, ', '')})", NOT_PS),
    "ps-join-method": (PS, f"and on ({TUPLE})", f"and on ({TUPLE.replace('http_request_method, ', '')})", NOT_PS),
    "ps-join-template": (PS, f"and on ({TUPLE})", f"and on ({TUPLE.replace(', url_template', '')})", NOT_PS),
    # What counts as a pass: no error, or a 404 (the scope check passed); never a 401.
    "ps-success-is-a-pass": (PS, 'error_type=~"|404"', 'error_type=~".*"', NOT_PS),
    "ps-404-is-a-pass": (PS, 'error_type=~"|404"', 'error_type=""', ["fleet-new-success-series-and-404"]),
    # Errors whose live verdict is certain are never platform-side.
    "ps-exclude-client-mutated": (PS, PS_EXCLUDED, 'openai_scope_error_diagnosis!~"token_lacks_scope|context_mismatch"',
                                  NOT_PS),
    "ps-exclude-token-lacks-scope": (PS, PS_EXCLUDED, 'openai_scope_error_diagnosis!~"client_mutated|context_mismatch"',
                                     NOT_PS),
    "ps-exclude-context-mismatch": (PS, PS_EXCLUDED, CM_EXCLUDED, NOT_PS),
    # Overflow values lump many keys / contexts / endpoints together.
    "ps-exclude-overflow-key": (PS, 'openai_key_fingerprint!~"_other|none"', 'openai_key_fingerprint!~"none"', NOT_PS),
    "ps-exclude-overflow-context": (PS, 'openai_organization!="_other",openai_project!="_other",', "", NOT_PS),
    "ps-exclude-overflow-template": (PS, 'url_template!="_other",', "", NOT_PS),
    # Both sides see a brand-new series and a long-lived one.
    "ps-new-error-series": (PS, "unless\n        openai_client_scope_errors_total",
                            "and\n        openai_client_scope_errors_total", ["fleet-timing-10s"]),
    "ps-new-success-series": (PS, "unless\n        openai_client_requests_total",
                              "and\n        openai_client_requests_total", ["fleet-new-success-series-and-404"]),
    "ps-error-increase-branch": (PS, "[10m])\n    ) > 0", "[10m])\n    ) > 1e9", ["fleet-platform-side"]),
    "ps-success-increase-branch": (PS, "[1h])\n    ) > 0", "[1h])\n    ) > 1e9", ["fleet-long-history"]),
    # ContextMismatch: no success of this tuple, a success of the same key and endpoint in another context.
    "cm-unless-same-tuple": (CM, f"unless on ({TUPLE})", f"unless on ({TUPLE}, openai_scope)", DRIFT),
    "cm-other-context-join": (CM, "and on (openai_key_fingerprint, server_address, http_request_method, url_template)",
                              "and on (openai_key_fingerprint, openai_project, server_address, http_request_method, "
                              "url_template)", DRIFT),
    "cm-join-host": (CM, "and on (openai_key_fingerprint, server_address, http_request_method, url_template)",
                     "and on (openai_key_fingerprint, http_request_method, url_template)", NOT_PS),
    "cm-exclude-client-mutated": (CM, CM_EXCLUDED, 'openai_scope_error_diagnosis!~"token_lacks_scope"', NOT_PS),
    "cm-exclude-token-lacks-scope": (CM, CM_EXCLUDED, 'openai_scope_error_diagnosis!~"client_mutated"', NOT_PS),
    # ClientMutated: one alert per service and key, whatever the scopes.
    "mutated-one-alert-per-key": (MUT, "by (job, openai_key_fingerprint, openai_key_hint)",
                                  "by (job, openai_key_fingerprint, openai_key_hint, openai_scope)",
                                  ["client-mutated"]),
}

# id -> (alert, rule field, new value or None to delete it, unit-test groups)
FIELD_MUTATIONS = {
    "ps-keep-firing": (PS, "keep_firing_for", None, ["fleet-no-flapping"]),
    "ps-no-for": (PS, "for", "1m", ["fleet-timing-10s"]),
    "mutated-no-for": (MUT, "for", "1m", ["fleet-timing-10s"]),
    "cm-no-for": (CM, "for", "1m", DRIFT),
}


def _rules() -> dict:
    return yaml.safe_load(fh.RULES.read_text())


def _rule(doc: dict, alert: str) -> dict:
    return next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alert)


def _run(tmp_path: Path, doc: dict, groups: list[str]) -> subprocess.CompletedProcess:
    """promtool check + test of ``doc`` against the named unit-test groups only."""
    promtool = fh.require_promtool()
    (tmp_path / "prometheus-rules.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=10000))
    check = subprocess.run([promtool, "check", "rules", "prometheus-rules.yaml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, "the mutation must still be a valid rule file: " + check.stdout + check.stderr
    tests = yaml.safe_load(TESTS.read_text())
    tests["tests"] = [t for t in tests["tests"] if t["name"] in groups]
    assert {t["name"] for t in tests["tests"]} == set(groups), groups
    (tmp_path / TESTS.name).write_text(yaml.safe_dump(tests, sort_keys=False, width=10000))
    return subprocess.run([promtool, "test", "rules", TESTS.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def test_the_groups_pass_unmutated(tmp_path):
    groups = sorted({g for *_, gs in [*MUTATIONS.values(), *FIELD_MUTATIONS.values()] for g in gs})
    out = _run(tmp_path, _rules(), groups)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("alert,old,new,groups", list(MUTATIONS.values()), ids=list(MUTATIONS))
def test_unit_tests_catch_a_broken_join_or_exclusion(tmp_path, alert, old, new, groups):
    doc = _rules()
    rule = _rule(doc, alert)
    assert rule["expr"].count(old) >= 1, f"{old!r} not in {alert}"
    rule["expr"] = rule["expr"].replace(old, new)
    out = _run(tmp_path, doc, groups)
    assert out.returncode != 0, f"the unit tests {groups} did not notice a broken {alert}"
    assert alert in out.stdout + out.stderr


@pytest.mark.parametrize("alert,field,value,groups", list(FIELD_MUTATIONS.values()), ids=list(FIELD_MUTATIONS))
def test_unit_tests_catch_a_slower_or_flapping_verdict(tmp_path, alert, field, value, groups):
    doc = _rules()
    rule = _rule(doc, alert)
    if value is None:
        assert field in rule
        del rule[field]
    else:
        assert field not in rule, f"{alert} must fire at the first evaluation that sees the evidence"
        rule[field] = value
    out = _run(tmp_path, doc, groups)
    assert out.returncode != 0, f"the unit tests {groups} did not notice {alert} with {field}={value}"
    assert alert in out.stdout + out.stderr


def test_every_alert_routes_and_says_who_fixes_it():
    """job on every alert (routing), the hint beside every fingerprint, a verdict from the vocabulary with its
    cause, the runbook link from the configurable base, the verdict group fast enough for a minute."""
    doc = _rules()
    tests = yaml.safe_load(TESTS.read_text())
    fired: dict[str, list[dict]] = {}
    for t in tests["tests"]:
        assert t["external_labels"]["openai_scopes_runbook_url"].startswith("https://")
        for case in t["alert_rule_test"]:
            fired.setdefault(case["alertname"], []).extend(case.get("exp_alerts") or [])
    for group in doc["groups"]:
        for rule in group["rules"]:
            alert = rule["alert"]
            assert fired.get(alert), f"{alert} never fires in the unit tests"
            for a in fired[alert]:
                labels = a["exp_labels"]
                assert labels.get("job"), (alert, "no job label: cannot be routed")
                if "openai_key_fingerprint" in labels:
                    assert "openai_key_hint" in labels, (alert, "fingerprint without hint")
                    text = a["exp_annotations"]["summary"] + a["exp_annotations"]["description"]
                    assert labels["openai_key_hint"] in text and labels["openai_key_fingerprint"] in text, alert
                assert a["exp_annotations"]["runbook_url"].startswith("https://")
                assert a["exp_annotations"]["runbook_url"].endswith("#" + alert.lower())
            assert rule["annotations"]["runbook_url"] == \
                "{{ $externalLabels.openai_scopes_runbook_url }}#" + alert.lower()
            if "verdict" in rule["labels"]:
                assert rule["labels"]["verdict"] in verdicts.MEANINGS
                assert rule["labels"]["cause"] == verdicts.meaning(rule["labels"]["verdict"]).cause
    verdict_rules = {r["alert"]: (g, r) for g in doc["groups"] for r in g["rules"] if "verdict" in r["labels"]}
    for alert in (PS, CM, MUT):
        group, rule = verdict_rules[alert]
        assert group["interval"] == "10s" and "for" not in rule and rule["keep_firing_for"]
    # never platform-side: the two configuration verdicts of decision 2
    assert verdict_rules[PS][1]["labels"]["cause"] == verdicts.PLATFORM
    assert verdict_rules[CM][1]["labels"]["verdict"] == verdicts.CONTEXT_MISMATCH
    assert verdicts.TOKEN_LACKS_SCOPE in verdict_rules[PS][1]["expr"]
    assert verdicts.CONTEXT_MISMATCH in verdict_rules[PS][1]["expr"]
