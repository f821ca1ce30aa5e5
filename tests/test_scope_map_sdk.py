"""The scope map follows the installed SDK: every endpoint it calls has a row, each row says its scopes or why they
are unknown, and operation names tell apart the calls the request tells apart. Runs on both lanes: the newest SDK
(CI upgrades it, so a release with a new endpoint fails here until the map learns it) and openai 1.35.7."""

from __future__ import annotations

import re
from importlib import resources

import openai
import pytest

from otel_openai_scopes.endpoints import (
    HELPER_HEADERS,
    HELPER_OPERATIONS,
    POLL,
    UNKNOWN_SCOPES,
    Endpoint,
    operation_for,
)
from otel_openai_scopes.scope_map import build_matcher, packaged_rows
from otel_openai_scopes.tools.scope_map_sync import missing, preferred_operation, shape, sync, synced_version
from otel_openai_scopes.tools.sdk_endpoints import COMPUTED, SdkCall, SdkScan, scan, scan_helper_headers

SCOPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


@pytest.fixture(scope="module")
def sdk() -> SdkScan:
    return scan()


@pytest.fixture(scope="module")
def matcher():
    return build_matcher()


def _concrete(template: str) -> str:
    """A path the SDK would send for a template (``{thread_id}`` -> ``x_thread_id``)."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "x_" + re.sub(r"\W", "", m.group(1)), template)


def _packaged_text() -> str:
    return resources.files("otel_openai_scopes").joinpath("data/scope_map.tsv").read_text(encoding="utf-8")


def test_the_scan_reads_every_call_site(sdk):
    assert sdk.version == openai.__version__
    assert sdk.unreadable == ()
    assert len(sdk.endpoints()) >= 60
    # the Assistants API calls the seed reports are about, on every SDK we support
    for method, template in [("GET", "/threads/{thread_id}/runs"), ("POST", "/threads/{thread_id}/messages"),
                             ("POST", "/vector_stores/{vector_store_id}/file_batches"), ("POST", "/batches")]:
        assert (method, template) in sdk.endpoints()


def test_the_installed_sdk_calls_no_endpoint_the_map_lacks(sdk):
    gaps = missing(packaged_rows(), sdk)
    assert gaps == [], (
        f"openai {sdk.version} calls endpoints the scope map lacks; run "
        "`python -m otel_openai_scopes.tools.scope_map_sync --write` and research the new rows: "
        + "; ".join(f"{m} {t} ({', '.join(ops)})" for m, t, ops in gaps))


def test_newest_sdk_families_are_in_the_map():
    have = {shape(r["method"], r["template"]) for r in packaged_rows()}
    for method, template in [("GET", "/agents"), ("GET", "/agents/automations"), ("GET", "/agents/environments"),
                             ("GET", "/agents/sessions"), ("POST", "/decisions"), ("POST", "/live/sessions"),
                             ("GET", "/vaults"), ("GET", "/webhook_endpoints"), ("GET", "/webhook_event_types"),
                             ("POST", "/responses/compact"), ("POST", "/responses/input_tokens"),
                             ("GET", "/organization/projects"), ("GET", "/organization/usage/completions"),
                             ("GET", "/organization/admin_api_keys")]:
        assert (method, template) in have, (method, template)


def test_the_packaged_map_is_in_step_with_the_sdk_it_was_synced_with(sdk):
    synced = synced_version(_packaged_text())
    assert synced, "the scope map says which SDK it was synced with"
    if sdk.version != synced:
        pytest.skip(f"openai {sdk.version} installed, the map was synced with {synced} (coverage is checked above)")
    rows = packaged_rows()
    assert sync(rows, sdk) == rows, "run `python -m otel_openai_scopes.tools.scope_map_sync --write`"


def test_every_row_states_scopes_or_why_not():
    for row in packaged_rows():
        scopes, confidence, reason = row["scopes"], row["confidence"], row["reason"]
        assert reason.strip(), row
        if scopes == UNKNOWN_SCOPES:
            assert confidence == "-", row
        else:
            assert confidence in ("H", "M", "L"), row
            assert all(SCOPE.match(s) for s in scopes.split(",")), row
        assert row["template"].startswith("/v1/"), row


def test_unknown_rows_carry_no_scope(matcher):
    ep = matcher.match("POST", "/v1/agents")
    assert ep.known and ep.scopes == () and ep.operation == "beta.agents.create"
    assert matcher.match("GET", "/v1/organization/projects").scopes == ("api.management.read",)
    assert matcher.match("GET", "/v1/organization/usage/completions").scopes == ("api.usage.read",)
    # literal segments of the new families win over the placeholder next to them
    assert matcher.match("GET", "/agents/sessions").operation == "beta.agents.sessions.list"
    assert matcher.match("GET", "/agents/agt_1").operation == "beta.agents.retrieve"
    assert matcher.match("POST", "/organization/certificates/activate").operation == \
        "admin.organization.certificates.activate"


def test_each_sdk_call_is_labelled_as_the_request_allows(sdk, matcher):
    """A call's label is its own SDK name, or the name of a call that sends the same request (same endpoint, same
    query; helper headers are checked below): ``files.retrieve_content`` is a deprecated alias of
    ``files.content``. A ``?beta=true`` call is labelled with its own ``beta.`` name. Names are the newest SDK's."""
    plain: dict[tuple[str, str], set[str]] = {}
    for call in sdk.calls:
        if not call.query:
            plain.setdefault(shape(call.method, call.template), set()).add(call.operation)
    for call in sdk.calls:
        path = _concrete(call.template) + (f"?{call.query}" if call.query else "")
        ep = matcher.match(call.method, path)
        assert ep.known and shape(ep.method, ep.template) == shape(call.method, call.template), call
        if call.query:
            assert ep.operation == call.operation, (call, ep.operation)
        else:
            # older SDKs: today's name of a resource that left beta (1.35.7's beta.vector_stores -> vector_stores)
            assert ep.operation in plain[shape(call.method, call.template)] or \
                ep.operation == call.operation.removeprefix("beta."), (call, ep.operation)


def test_every_helper_the_sdk_sends_is_told_apart(sdk, matcher):
    """Each ``X-Stainless-*`` helper value in the SDK's source relabels its endpoint's call to an operation the
    SDK has; a new helper value fails here until ``HELPER_OPERATIONS`` knows it."""
    assert sdk.helper_values, "the SDK's streaming and polling helpers send helper headers"
    labels = {ep_op for ep_op in (r["operation"] for r in packaged_rows()) if ep_op}
    for header, value in sdk.helper_values:
        assert header in HELPER_HEADERS, f"openai {sdk.version} sends a new helper header {header}: read it"
        if header == HELPER_HEADERS[2]:
            assert value == "true"
            continue
        assert value in HELPER_OPERATIONS, f"openai {sdk.version} sends {header}: {value}; add it to HELPER_OPERATIONS"
        base, operation = HELPER_OPERATIONS[value]
        assert base in labels, value
        assert operation in sdk.methods, (value, operation)
        assert operation_for(Endpoint("POST", "/x", base), value) == operation
    polls = sorted(m for m in sdk.methods if m.endswith(".poll"))
    assert polls, "runs.poll and the vector-store polls exist on every supported SDK"
    rows = {r["operation"]: r for r in packaged_rows()}
    for poll in polls:
        retrieve = poll[: -len("poll")] + "retrieve"
        if retrieve not in rows:  # 1.35.7's beta.vector_stores.* are labelled with today's vector_stores.* names
            retrieve = retrieve[len("beta."):] if retrieve.startswith("beta.") else retrieve
            poll = poll[len("beta."):] if poll.startswith("beta.") else poll
        row = rows[retrieve]
        ep = matcher.match(row["method"], _concrete(row["template"]))
        assert operation_for(ep, POLL) == poll


def test_the_scan_reports_helper_headers_the_runtime_does_not_read(tmp_path):
    """A helper header under a new name, or with a computed value, is reported (and fails the test above)."""
    (tmp_path / "helpers.py").write_text(
        'H1 = {"X-Stainless-Helper": "responses.stream", "X-Stainless-Custom-Event-Handler": "true"}\n'
        'H2 = {"X-Stainless-Stream-Helper": name, "X-Stainless-Retry-Count": "0"}\n'
        'H3 = {"X-Stainless-Poll-Helper": "true", **extra}\n')
    assert sorted(scan_helper_headers(str(tmp_path))) == [("X-Stainless-Helper", "responses.stream"),
                                                      ("X-Stainless-Poll-Helper", "true"),
                                                      ("X-Stainless-Stream-Helper", COMPUTED)]


def test_preferred_operation():
    calls = [SdkCall("POST", "/responses", "beta.responses.create", "beta=true"),
             SdkCall("POST", "/responses", "responses.create")]
    assert preferred_operation(calls) == "responses.create"
    aliases = [SdkCall("POST", "/chat/completions", "beta.chat.completions.create"),
               SdkCall("POST", "/chat/completions", "chat.completions.create")]
    assert preferred_operation(aliases) == "chat.completions.create"
    assert preferred_operation(aliases, "beta.chat.completions.create") == "beta.chat.completions.create"
    assert preferred_operation([SdkCall("GET", "/x", "x.list")], "gone.list") == "x.list"


def test_sync_adds_unknown_rows_and_keeps_curated_ones():
    rows = [{"method": "GET", "template": "/v1/things/{thing_id}", "operation": "things.get", "scopes": "t.read",
             "confidence": "H", "reason": "documented"}]
    result = SdkScan("9.9.9", (SdkCall("GET", "/things/{id}", "things.retrieve"),
                               SdkCall("POST", "/widgets", "widgets.create")), frozenset(), (), ())
    assert [m[:2] for m in missing(rows, result)] == [("POST", "/widgets")]
    out = sync(rows, result)
    assert out[0] == {"method": "GET", "template": "/v1/things/{thing_id}", "operation": "things.retrieve",
                      "scopes": "t.read", "confidence": "H", "reason": "documented"}
    assert out[1] == {"method": "POST", "template": "/v1/widgets", "operation": "widgets.create",
                      "scopes": UNKNOWN_SCOPES, "confidence": "-",
                      "reason": "added from openai 9.9.9: not yet researched"}
    assert missing(out, result) == []


def test_the_readme_counts_are_the_packaged_map(sdk):
    from collections import Counter
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### The scope map"):readme.index("### Never leak a key")]
    counts = Counter(row["confidence"] for row in packaged_rows())
    synced = synced_version(_packaged_text())
    assert f" in openai {synced}, admin" in section
    if sdk.version == synced:
        assert f"({len(sdk.endpoints())} in openai {synced}, admin" in section
    for text in (f"({counts['H']} rows)", f"({counts['M']}:", f"({counts['L']}:", f"({counts['-']}:"):
        assert text in section, text
