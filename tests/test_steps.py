"""The recorder's pure steps, called directly: no client, no SDK provider, no server."""

from __future__ import annotations

import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes.caches import Cap
from otel_openai_scopes.fingerprint import CredentialCache, describe
from otel_openai_scopes.headers import query_credentials
from otel_openai_scopes.sent_credential import Describers, describe_sent, read_sent
from tests.support.keys import make_key
from tests.support.sdk import http_module


def _describers(hint=True, keys=100, contexts=100):
    creds = CredentialCache()
    key_cap, context_cap = Cap(keys, A.FINGERPRINT_OVERFLOW), Cap(contexts, A.CONTEXT_OVERFLOW)

    def context(org, project):
        return (org, project) if context_cap.admit((org, project)) else (A.CONTEXT_OVERFLOW, A.CONTEXT_OVERFLOW)

    return Describers(creds.from_authorization, creds.describe, creds.secret_of, hint, key_cap.value, context)


def _request(url, headers):
    return http_module().Request("GET", url, headers=headers)


def test_read_sent_collects_every_credential_the_request_carried():
    key, gw, tok, sig = make_key(), make_key("gw-", 24), make_key("", 30), make_key("", 20)
    req = _request(f"https://gw.example/v1/models?api-version=2024-06-01&token={tok}&sig={sig}",
                   {"Authorization": f"Bearer {key}", "OpenAI-Project": "proj_1", "X-Gateway-Key": gw,
                    "Content-Type": "application/json", "Idempotency-Key": "k1"})
    auth, api_key, org, project, others = read_sent(req)
    assert (auth, api_key, org, project) == (f"Bearer {key}", None, None, "proj_1")
    assert set(others) == {gw, "k1", tok, sig}  # not the api-version, not the content type


def test_describe_sent_one_record_for_spans_metrics_and_masking():
    key, azure_key, gw = make_key(), make_key("", 32), make_key("gw-", 24)
    sent = describe_sent((f"Bearer {key}", azure_key, "org-1", "proj_1", (gw,)), _describers())
    cred = describe(key)
    assert (sent.fingerprint, sent.kind, sent.hint, sent.carried) == (cred.fingerprint, "project", cred.hint, True)
    assert sent.secrets == (key, azure_key, gw) and sent.secret == key
    assert (sent.organization, sent.project) == ("org-1", "proj_1")
    assert sent.span_attrs == {A.KEY_KIND: "project", A.KEY_FINGERPRINT: cred.fingerprint, A.KEY_HINT: cred.hint,
                               A.ORGANIZATION: "org-1", A.PROJECT: "proj_1"}
    assert sent.metric_attrs == {A.KEY_FINGERPRINT: cred.fingerprint, A.KEY_HINT: cred.hint,
                                 A.ORGANIZATION: "org-1", A.PROJECT: "proj_1"}


def test_describe_sent_caps_and_absences():
    how = _describers(hint=False, keys=1, contexts=1)
    first = describe_sent((f"Bearer {make_key()}", None, "org-1", None, ()), how)
    second = describe_sent((f"Bearer {make_key()}", None, "org-2", "proj_2", ()), how)
    nothing = describe_sent((None, None, None, None, ()), how)
    assert first.metric_attrs[A.ORGANIZATION] == "org-1" and A.PROJECT not in first.metric_attrs
    assert second.metric_attrs == {A.KEY_FINGERPRINT: A.FINGERPRINT_OVERFLOW, A.ORGANIZATION: A.CONTEXT_OVERFLOW,
                                   A.PROJECT: A.CONTEXT_OVERFLOW}
    assert A.KEY_HINT not in second.span_attrs and second.span_attrs[A.PROJECT] == "proj_2"
    assert nothing.metric_attrs == {A.KEY_FINGERPRINT: A.NO_FINGERPRINT} and nothing.secrets == ()
    assert not nothing.carried and nothing.kind == "none"


@pytest.mark.parametrize("query,found", [
    (b"api-version=2024-06-01", ()),
    (b"key=abc%2Fdef", ("abc/def", "abc%2Fdef")),  # decoded, and as a gateway quoting the raw URL shows it
    (b"subscription-key=s1&x=1&access_token=t1", ("s1", "t1")),
])
def test_query_credentials(query, found):
    assert query_credentials(query) == found
