"""URL path -> template, operation and scopes (pure functions), and the packaged scope map."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_openai_scopes.endpoints import (
    POLL,
    Endpoint,
    EndpointMatcher,
    generic_template,
    helper_of,
    looks_like_id,
    operation_for,
    split_path,
)
from otel_openai_scopes.scope_map import build_matcher, packaged_rows

SHARED_TSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "openai-endpoints.tsv"


@pytest.fixture(scope="module")
def matcher():
    return build_matcher()


@pytest.mark.parametrize("method,path,template,operation,scopes", [
    ("GET", "/threads/thread_abc/runs", "/threads/{thread_id}/runs", "beta.threads.runs.list", ("api.threads.read",)),
    ("GET", "/v1/threads/thread_abc/runs?limit=1", "/threads/{thread_id}/runs", "beta.threads.runs.list",
     ("api.threads.read",)),
    ("POST", "/threads/runs", "/threads/runs", "beta.threads.create_and_run", ("api.threads.write",)),
    ("GET", "/threads/runs", "/threads/{thread_id}", "beta.threads.retrieve", ("api.threads.read",)),
    ("POST", "/threads/t/messages", "/threads/{thread_id}/messages", "beta.threads.messages.create",
     ("api.threads.write",)),
    ("POST", "/vector_stores/vs_1/search", "/vector_stores/{vector_store_id}/search", "vector_stores.search",
     ("vector_store.read",)),
    ("GET", "/files/file-abc/content", "/files/{file_id}/content", "files.content", ("api.files.read",)),
    ("POST", "/batches/batch_1/cancel", "/batches/{batch_id}/cancel", "batches.cancel", ("api.batch.write",)),
    ("GET", "/models/ft:gpt-4o:org:x:abc", "/models/{model}", "models.retrieve", ("api.model.read", "model.read")),
    ("POST", "/responses", "/responses", "responses.create", ("api.responses.write", "model.request")),
    ("POST", "/deployments/gpt4/chat/completions", "/deployments/{deployment_id}/chat/completions",
     "chat.completions.create", ("model.request", "api.model.request")),
])
def test_known_endpoints(matcher, method, path, template, operation, scopes):
    ep = matcher.match(method, path)
    assert (ep.template, ep.operation, ep.scopes, ep.known) == (template, operation, scopes, True)


def test_literal_beats_placeholder_and_backtracks():
    m = EndpointMatcher([
        Endpoint("GET", "/a/{x}/c", "p"),
        Endpoint("GET", "/a/b/d", "q"),
    ])
    assert m.match("GET", "/a/b/c").operation == "p"  # literal 'b' dead-ends at 'c': backtrack to {x}
    assert m.match("GET", "/a/b/d").operation == "q"


def test_unknown_endpoints_are_templated_generically(matcher):
    ep = matcher.match("GET", "/brand_new/9f1c2e77-1a2b-4c3d-8e9f-001122334455/items/item_abc123")
    assert not ep.known and ep.scopes == () and ep.operation == ""
    assert ep.template == "/brand_new/{brand_new_id}/items/{item_id}"
    assert matcher.match("PATCH", "/models").template == "/models"  # known path, unknown method


def test_generic_id_detection():
    assert looks_like_id("thread_abc")
    assert looks_like_id("0123456789abcdef0123")
    assert looks_like_id("ft:gpt-4o:my-org::abc")
    assert not looks_like_id("completions") and not looks_like_id("v1") and not looks_like_id("")
    assert generic_template(["things", "x" * 100]) == "/things/{thing_id}"


def test_every_packaged_row_matches_itself(matcher):
    rows = packaged_rows()
    assert len(rows) >= 160
    for row in rows:
        ep = matcher.match(row["method"], row["template"])
        assert ep.known and ep.template == row["template"][3:], row


@pytest.mark.skipif(not SHARED_TSV.exists(), reason="research table not beside the checkout")
def test_packaged_map_covers_the_research_table(matcher):
    with open(SHARED_TSV) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        path = row["path_template"].split("?")[0]
        concrete = "/".join(seg.replace("{", "x_").replace("}", "") for seg in path.split("/"))
        ep = matcher.match(row["method"], concrete)
        assert ep.known, row


def test_user_override_mapping_replaces_and_extends():
    m = build_matcher({"GET /v1/models": ["x.read"], "GET /v1/widgets/{widget_id}": {"scopes": "w.read",
                                                                                     "operation": "widgets.get"}})
    assert m.match("GET", "/models").scopes == ("x.read",)
    ep = m.match("GET", "/widgets/w_1")
    assert ep.operation == "widgets.get" and ep.scopes == ("w.read",)


def test_override_files(tmp_path):
    tsv = tmp_path / "m.tsv"
    tsv.write_text("method\ttemplate\toperation\tscopes\nGET\t/v1/models\tmodels.list\ta.b\n")
    js = tmp_path / "m.json"
    js.write_text('{"endpoints": [{"method": "GET", "template": "/v1/files", "scopes": "c.d"}]}')
    m = build_matcher(str(tsv), str(js))
    assert m.match("GET", "/models").scopes == ("a.b",)
    assert m.match("GET", "/files").scopes == ("c.d",)
    bad = tmp_path / "bad.json"
    bad.write_text('{"no-space-key": ["x"]}')
    assert build_matcher(str(bad)).match("GET", "/models").scopes == ("api.model.read", "model.read")  # warned


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "DELETE", "get", "BREW"]), path=st.text(max_size=5000))
def test_any_path_gives_a_bounded_template(matcher, method, path):
    ep = matcher.match(method, path)
    assert ep.template.startswith("/")
    assert len(split_path(ep.template)) <= 32
    assert len(ep.template) <= 32 * 66 + 40
    assert "?" not in ep.template and "#" not in ep.template


RUNS = Endpoint("POST", "/threads/{thread_id}/runs", "beta.threads.runs.create", ("api.threads.write",))


@pytest.mark.parametrize("endpoint,helper,query,operation", [
    (RUNS, "", "", "beta.threads.runs.create"),
    (RUNS, "threads.runs.create_and_stream", "", "beta.threads.runs.stream"),  # runs.stream and create_and_stream
    (Endpoint("POST", "/threads/runs", "beta.threads.create_and_run"), "threads.create_and_run_stream", "",
     "beta.threads.create_and_run_stream"),
    (Endpoint("POST", "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
              "beta.threads.runs.submit_tool_outputs"), "threads.runs.submit_tool_outputs_stream", "",
     "beta.threads.runs.submit_tool_outputs_stream"),
    (Endpoint("POST", "/chat/completions", "chat.completions.create"), "chat.completions.parse", "",
     "chat.completions.parse"),
    (Endpoint("POST", "/chat/completions", "chat.completions.create"), "beta.chat.completions.stream", "",
     "beta.chat.completions.stream"),
    (Endpoint("GET", "/threads/{thread_id}/runs/{run_id}", "beta.threads.runs.retrieve"), POLL, "",
     "beta.threads.runs.poll"),
    (Endpoint("GET", "/vector_stores/{vector_store_id}/files/{file_id}", "vector_stores.files.retrieve"), POLL, "",
     "vector_stores.files.poll"),
    (Endpoint("POST", "/responses", "responses.create"), "", "beta=true", "beta.responses.create"),
    (Endpoint("POST", "/responses", "responses.create"), "", "a=1&beta=true", "beta.responses.create"),
    # what the request does not say stays as the endpoint says
    (RUNS, "chat.completions.parse", "", "beta.threads.runs.create"),  # a helper of another endpoint
    (RUNS, "my.own.helper", "", "beta.threads.runs.create"),  # an unknown value never becomes a label
    (RUNS, POLL, "", "beta.threads.runs.create"),  # poll only relabels a retrieve
    (Endpoint("POST", "/responses", "responses.create"), "", "beta=false", "responses.create"),
    (Endpoint("GET", "/unknown/{id}", "", known=False), "threads.runs.create_and_stream", "beta=true", ""),
])
def test_operation_for(endpoint, helper, query, operation):
    assert operation_for(endpoint, helper, query) == operation


class _NotGiven:
    def __bool__(self):
        return False


class _Hostile(dict):
    def get(self, *a, **k):
        raise RuntimeError("odd headers")


@pytest.mark.parametrize("headers,helper", [
    ({"X-Stainless-Stream-Helper": "threads.runs.create_and_stream", "X-Stainless-Custom-Event-Handler": "false"},
     "threads.runs.create_and_stream"),
    ({"X-Stainless-Helper-Method": "chat.completions.parse"}, "chat.completions.parse"),
    ({"X-Stainless-Poll-Helper": "true", "X-Stainless-Custom-Poll-Interval": "500"}, POLL),
    ({"OpenAI-Beta": "assistants=v2"}, ""),
    ({"X-Stainless-Helper-Method": "my.own.helper"}, ""),  # a closed set: header text never comes back
    ({"X-Stainless-Helper-Method": "x" * 300, "X-Stainless-Stream-Helper": "threads.create_and_run_stream"},
     "threads.create_and_run_stream"),
    ({"X-Stainless-Stream-Helper": ""}, ""),
    ({"X-Stainless-Stream-Helper": 7}, ""),
    (None, ""),
    (_NotGiven(), ""),
    (_Hostile({"X-Stainless-Poll-Helper": "true"}), ""),
])
def test_helper_of(headers, helper):
    assert helper_of(headers) == helper


def test_helper_of_reads_the_options_the_real_sdk_builds(monkeypatch):
    """The SDK's own request options for ``runs.stream`` (built by its helper, not sent): the helper header is there."""
    openai = pytest.importorskip("openai")
    from openai._base_client import SyncAPIClient

    seen = []

    def capture(self, cast_to, options, *args, **kwargs):
        seen.append(options)
        raise RuntimeError("not sent")

    monkeypatch.setattr(SyncAPIClient, "request", capture)
    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(RuntimeError), client.beta.threads.runs.stream(thread_id="thread_1", assistant_id="asst_1"):
        pass
    with pytest.raises(RuntimeError):
        client.beta.threads.runs.create(thread_id="thread_1", assistant_id="asst_1")
    stream, create = seen
    matcher = build_matcher()
    assert operation_for(matcher.match("POST", stream.url), helper_of(stream.headers)) == "beta.threads.runs.stream"
    assert operation_for(matcher.match("POST", create.url), helper_of(create.headers)) == "beta.threads.runs.create"


def test_beta_query_labels_the_beta_resource(matcher):
    ga = matcher.match("POST", "/responses")
    beta = matcher.match("POST", "/responses?beta=true")
    assert (beta.operation, beta.template, beta.scopes) == ("beta.responses.create", ga.template, ga.scopes)
    assert matcher.match("GET", "/v1/responses/resp_1/input_items?beta=true&limit=2").operation == \
        "beta.responses.input_items.list"
    assert matcher.match("POST", "/deployments/d/chat/completions?api-version=1").operation == \
        "chat.completions.create"


def test_unknown_scopes_parse_to_none():
    m = build_matcher({"GET /v1/widgets": "unknown", "GET /v1/gadgets": {"scopes": ["unknown", "g.read"]}})
    assert m.match("GET", "/widgets").scopes == ()
    assert m.match("GET", "/gadgets").scopes == ("g.read",)
