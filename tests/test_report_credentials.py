"""``report`` and the credential's own evidence (issue 15): a token whose grant (``openai.scope.granted``) lacks
the missing scope is ``token_lacks_scope`` (never platform-side), and a failing client made by ``copy()`` /
``with_options()`` with other credentials than its parent's, whose parent's credentials passed the scope, is named
with its parent, the line of the copy and the changed fields: ``never_granted`` with the pattern the evidence fits
(a shared client rebound by a task that died, or an intentional per-tenant client).

The runtime puts ``openai.scope.granted`` and ``openai.client.copy_changed`` on spans; these tests write them
directly.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from otel_openai_scopes import attributes as A
from otel_openai_scopes import verdicts as V
from otel_openai_scopes.tools.report import analyze, explanation, fleet_verdict, render_html, to_json
from tests.support.spans import MS, T0, call, err, write_fleet_file

BIN = Path(sys.executable).parent
READ = "api.threads.read"
S = 1_000 * MS


def with_attrs(span: Any, **attrs: Any) -> Any:
    span.attributes.update(attrs)
    return span


# ---- (a) the token's own grant ---------------------------------------------------------------------------
def token_flap(grant: list[str], n_errors: int = 4) -> list:
    """A token key failing on runs.list while the same tuple also passes there (what would read as a flap)."""
    spans = [call(T0 + k * 100 * MS, key="fp-token", client="c-ok") for k in range(20)]
    spans += [with_attrs(err(T0 + k * 400 * MS + 1, key="fp-token", client="c-tok"), **{A.SCOPE_GRANTED: grant})
              for k in range(n_errors)]
    return spans


def test_a_grant_without_the_missing_scope_is_token_lacks_scope_even_where_the_tuple_also_passed():
    analysis = analyze(token_flap(["api.threads.write", "model.request"]), gap_seconds=5)
    (w,) = analysis.windows
    assert w.successes_same_key > 0  # without the grant this would be scope_flapping
    assert w.diagnosis == V.TOKEN_LACKS_SCOPE and w.grant_lacks == 4
    text = explanation(w)
    assert text == ("configuration: the token's own grant lacks api.threads.read: 4 of the 4 errors came with a grant "
                    "without it (openai.scope.granted: api.threads.write, model.request), so the token was issued "
                    "without the scope. Certain from the first failure, never platform-side: re-authorise, "
                    "requesting api.threads.read.")
    doc = to_json(analysis)["windows"][0]
    assert doc["diagnosis"] == V.TOKEN_LACKS_SCOPE and doc["errors_grant_lacks_scope"] == 4
    assert doc["token_grants"] == [{"scopes": ["api.threads.write", "model.request"], "lacks_missing": True,
                                    "errors": 4}]
    page = render_html(analysis)
    colour = V.meaning(V.TOKEN_LACKS_SCOPE).colour
    assert f'data-verdict="{V.TOKEN_LACKS_SCOPE}"' in page and f'fill="{colour}"' in page
    assert f'background:{colour}"></i>{V.TOKEN_LACKS_SCOPE}: configuration (token issued without the scope)' in page


def test_from_the_first_failure():
    (w,) = analyze(token_flap([], n_errors=1)).windows  # a token granted nothing at all
    assert w.diagnosis == V.TOKEN_LACKS_SCOPE


def test_a_grant_holding_the_scope_is_no_token_verdict():
    """The token has the scope and still fails: its history decides (here the same tuple passed: flapping)."""
    (w,) = analyze(token_flap([READ, "model.request"]), gap_seconds=5).windows
    assert w.diagnosis == V.SCOPE_FLAPPING and w.grant_lacks == 0
    many = [f"api.scope{k:02d}.read" for k in range(30)] + [READ]  # the scope past the first 16 shown
    (w,) = analyze(token_flap(many), gap_seconds=5).windows
    assert w.diagnosis == V.SCOPE_FLAPPING and w.grant_lacks == 0


def test_a_process_live_token_lacks_scope_is_the_fleet_verdict():
    spans = [err(T0 + k * MS, diagnosis=V.TOKEN_LACKS_SCOPE) for k in range(2)]
    spans += [call(T0 + k * MS + 1) for k in range(5)]
    (w,) = analyze(spans).windows
    assert w.diagnosis == V.TOKEN_LACKS_SCOPE
    assert "a process read the token's own grant and found api.threads.read not in it" in explanation(w)


def test_token_lacks_scope_in_the_verdict_order():
    T, F, M = V.TOKEN_LACKS_SCOPE, V.SCOPE_FLAPPING, V.CLIENT_MUTATED
    assert fleet_verdict(3, 0, 10, {F: 3}, grant_lacks=1) == T
    assert fleet_verdict(3, 3, 10, {}, grant_lacks=3) == M
    assert fleet_verdict(3, 0, 0, {}, grant_lacks=1, mixed=True) == T  # the grant is per error: no cap mixes it
    assert V.TOKEN_LACKS_SCOPE in V.ALL


def test_token_lacks_scope_on_the_terminal(tmp_path):
    path = tmp_path / "t.jsonl"
    write_fleet_file(path, token_flap(["model.request"]), random.Random(1))
    out = subprocess.run([str(BIN / "otel-openai-scopes"), "report", str(path), "--gap", "5"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "-> token_lacks_scope: configuration: the token's own grant lacks api.threads.read" in out.stdout
    assert "-> scope_flapping" not in out.stdout and "OpenAI support" not in out.stdout


# ---- (b) a client copied with other credentials -------------------------------------------------------
def copied_client(parent_keeps_working: bool) -> list:
    """Client c-main (built at app.py:10 with the main key) passes runs.list for 10 s; then a copy c-tenant, made by
    with_options(api_key=...) at tasks.py:42, fails on it for 10 s with the tenant key. The parent either stops
    (the copy was bound over the shared client) or keeps working alongside the copy (a per-tenant client)."""
    main_until = 20 if parent_keeps_working else 10
    spans = [with_attrs(call(T0 + k * S // 2, key="fp-main", client="c-main", hint="sk-proj-...MAIN"),
                        **{A.CLIENT_ORIGIN: "/srv/app.py:10"}) for k in range(main_until * 2)]
    spans += [with_attrs(err(T0 + 10 * S + k * S, key="fp-tenant", client="c-tenant", hint="sk-proj-...TNNT",
                             diagnosis=V.NEVER_GRANTED if k >= 2 else V.UNKNOWN),
                         **{A.CLIENT_ORIGIN: "/srv/tasks.py:42", A.CLIENT_PARENT_ID: "c-main",
                            A.CLIENT_COPY_CHANGED: ["api_key"]}) for k in range(10)]
    return spans


def test_a_shared_client_rebound_by_a_task_is_named_with_its_parent_and_the_line_of_the_copy():
    analysis = analyze(copied_client(parent_keeps_working=False), gap_seconds=30)
    (w,) = analysis.windows
    assert w.diagnosis == V.NEVER_GRANTED  # the copy's own key lacks the scope
    text = explanation(w)
    assert text.startswith("configuration: the key never passed the scope check")
    assert ("The failing client c-tenant is a copy of client c-main (built at /srv/app.py:10) made by "
            "copy()/with_options() at /srv/tasks.py:42 with api_key changed, and c-main's credentials passed this "
            "scope 20 times in the 15 minutes up to the window's end.") in text
    assert ("c-main made no call after the copy was made and the copy took over: your app: a shared client was "
            "rebound") in text
    (d,) = to_json(analysis)["windows"][0]["derived_clients"]
    assert d == {"client": "c-tenant", "origin": "/srv/tasks.py:42", "parent": "c-main",
                 "parent_origin": "/srv/app.py:10", "changed": ["api_key"], "parent_passed": 20,
                 "pattern": "shared_client_rebound"}


def test_an_intentional_per_tenant_client_says_the_tenant_key_lacks_the_scope():
    analysis = analyze(copied_client(parent_keeps_working=True), gap_seconds=30)
    (w,) = analysis.windows
    assert w.diagnosis == V.NEVER_GRANTED
    text = explanation(w)
    assert "The failing client c-tenant is a copy of client c-main" in text
    assert "c-main kept working alongside the copy, an intentional per-tenant client: the tenant key lacks the " \
           "scope." in text and "rebound" not in text
    assert to_json(analysis)["windows"][0]["derived_clients"][0]["pattern"] == "per_tenant_client"


def test_no_parent_evidence_no_copy_sentence():
    """The parent's credentials never passed this scope: nothing to say about the copy."""
    spans = [s for s in copied_client(parent_keeps_working=True) if s.attributes[A.KEY_FINGERPRINT] == "fp-tenant"]
    spans += [with_attrs(call(T0 + k * S, key="fp-main", client="c-main", template="/v1/models",
                              required=("api.model.read",)), **{A.CLIENT_ORIGIN: "/srv/app.py:10"})
              for k in range(5)]
    (w,) = analyze(spans, gap_seconds=30).windows
    assert w.diagnosis == V.NEVER_GRANTED and w.derived == [] and "copy" not in explanation(w)


def test_the_copy_evidence_read_from_a_file(tmp_path):
    path = tmp_path / "t.jsonl"
    write_fleet_file(path, copied_client(parent_keeps_working=False), random.Random(2))
    out = subprocess.run([str(BIN / "otel-openai-scopes"), "report", "--json", "--gap", "30", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    (w,) = json.loads(out.stdout)["windows"]
    assert w["diagnosis"] == V.NEVER_GRANTED
    assert [d["pattern"] for d in w["derived_clients"]] == ["shared_client_rebound"]
