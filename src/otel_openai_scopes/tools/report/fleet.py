"""The fleet rules: a window's verdict from the whole fleet's evidence (pure), and the sentences that say what it
means citing only the evidence counted. Verdict names, the failure threshold and the causes come from
:mod:`otel_openai_scopes.verdicts`, as the live diagnosis's do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ... import verdicts as V
from .timeaxis import when
from .windows import Window

if TYPE_CHECKING:
    from .fold import Analysis


def fleet_verdict(errors: int, mutated_errors: int, successes_same_key: int, live: Mapping[str, int], *,
                  other_context_successes: int = 0, mixed: bool = False, grant_lacks: int = 0) -> str:
    """The window's verdict from the whole fleet's evidence, in the live diagnosis's order.

    Errors all from mutated clients: ``client_mutated`` (the app). Errors that came with the token's own grant
    (``openai.scope.granted``) lacking a missing scope, or a process's live ``token_lacks_scope``:
    ``token_lacks_scope``, configuration, certain from the first failure and never platform-side, whatever
    else succeeded. A window whose key tuple mixes keys or
    contexts counted together past a cap (``mixed``): ``unknown``, no success can be said to be its own. A
    success of the same key tuple (fingerprint, organization, project, host) on the same endpoints during the
    window, or a process that saw one shortly before (its live ``scope_flapping``): ``scope_flapping``. Else a
    success of the same key and host with another organization or project (or a process's live
    ``context_mismatch``): ``context_mismatch``, configuration. Otherwise, with no success anywhere,
    ``never_granted`` once a process said so or ``MIN_FAILURES`` errors are in; fewer: ``unknown``.
    """
    if errors and mutated_errors >= errors:
        return V.CLIENT_MUTATED
    if grant_lacks > 0 or live.get(V.TOKEN_LACKS_SCOPE, 0) > 0:
        return V.TOKEN_LACKS_SCOPE
    if mixed:
        return V.UNKNOWN
    if successes_same_key > 0 or live.get(V.SCOPE_FLAPPING, 0) > 0:
        return V.SCOPE_FLAPPING
    if other_context_successes > 0 or live.get(V.CONTEXT_MISMATCH, 0) > 0:
        return V.CONTEXT_MISMATCH
    if live.get(V.NEVER_GRANTED, 0) > 0 or errors - mutated_errors >= V.MIN_FAILURES:
        return V.NEVER_GRANTED
    return V.UNKNOWN


def context(organization: str, project: str) -> str:
    """``organization org-1, project proj_2`` (ids as sent: not secrets), saying when one was not sent."""
    return (f"organization {organization or '(none sent)'}, project {project or '(none sent)'}")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


def _cause(verdict: str) -> str:
    return V.meaning(verdict).cause


def _mutated(w: Window) -> str:
    fields = ", ".join(f for f, _ in w.mutated_fields.most_common()) or "credentials"
    text = (f"{_cause(V.CLIENT_MUTATED)}: the failing client sends a different {fields} from the one it was built "
            "with (openai.client.mutated).")
    if w.other_clients_ok:
        text += (f" Other clients kept working: {plural(w.other_clients_ok_calls, 'successful call')} from "
                 f"{plural(w.other_clients_ok, 'other client')} meanwhile.")
    else:
        text += " No other client made a successful call meanwhile."
    return text + (" Look for code that changes api_key/organization/project on a shared client (e.g. a task "
                   "that swaps it and dies before restoring it).")


def _flapping(w: Window, flipped: int) -> str:
    if w.successes_same_key:
        text = (f"{_cause(V.SCOPE_FLAPPING)}: the same key passed the scope check on these endpoints "
                f"{plural(w.successes_same_key, 'time')} during the window")
        if w.successes_other_processes:
            text += (f", {w.successes_other_processes} of them in "
                     f"{plural(w.processes_succeeding, 'other process')}")
        text += ", while it failed here."
    else:
        text = (f"{_cause(V.SCOPE_FLAPPING)}: a process saw the same key pass the scope check shortly before it "
                f"failed (its own verdict: {V.SCOPE_FLAPPING}).")
    if flipped:
        text += (f" {plural(flipped, 'process')} with no success of its own said {V.UNKNOWN}/{V.NEVER_GRANTED}; "
                 "the fleet's successes overrule that.")
    return text + (" Not your code (or a permission change still propagating, up to 15-30 min): keep the request "
                   "ids for OpenAI support.")


def _context_mismatch(w: Window) -> str:
    here = context(w.organization, w.project)
    if w.other_contexts:
        passing = "; ".join(f"{context(o, p)} ({plural(n, 'time')})" for (o, p), n in
                            list(w.other_contexts.items())[:3])
        more = f" and {plural(len(w.other_contexts) - 3, 'other context')}" if len(w.other_contexts) > 3 else ""
        text = (f"{_cause(V.CONTEXT_MISMATCH)}: the same key passed the scope check on these endpoints during the "
                f"window with {passing}{more}, and never with {here}, where it failed.")
    else:
        named = "; ".join(context(o, p) for o, p in w.live_contexts)
        text = (f"{_cause(V.CONTEXT_MISMATCH)}: a process saw the same key pass the scope check with "
                f"{named or 'another organization or project'} shortly before it failed with {here} (its own "
                f"verdict: {V.CONTEXT_MISMATCH}).")
    return text + (" The organization or project sent here is not one in which the key holds the scope (e.g. a "
                   "pod's OPENAI_PROJECT_ID pointing at another project): send the one that works. Not "
                   "platform-side.")


def _scopes(scopes: tuple[str, ...], most: int = 8) -> str:
    return ", ".join(scopes[:most]) + (f" +{len(scopes) - most}" if len(scopes) > most else "") if scopes else \
        "no scope"


def _token_lacks(w: Window) -> str:
    missing = _scopes(w.scopes)
    if w.grant_lacks:
        grant = next((g for (g, lacks), _ in w.grants.most_common() if lacks), ())
        text = (f"{_cause(V.TOKEN_LACKS_SCOPE)}: the token's own grant lacks {missing}: "
                f"{w.grant_lacks} of the {plural(w.errors, 'error')} came with a grant without it "
                f"(openai.scope.granted: {_scopes(grant)}), so the token was issued without the scope.")
    else:
        text = (f"{_cause(V.TOKEN_LACKS_SCOPE)}: a process read the token's own grant and found {missing} not in it "
                f"(its own verdict: {V.TOKEN_LACKS_SCOPE}).")
    return text + f" Certain from the first failure, never platform-side: re-authorise, requesting {missing}."


def _derived(w: Window) -> str:
    """What the failing copies' parents say: a shared client rebound (the app), or a per-tenant client whose
    tenant credentials lack the scope."""
    text = ""
    for d in w.derived:
        text += (f" The failing client {d.client} is a copy of client {d.parent} (built at {d.parent_origin or '?'}) "
                 f"made by copy()/with_options() at {d.origin or '?'} with {', '.join(d.changed)} changed, and "
                 f"{d.parent}'s credentials passed this scope {plural(d.parent_passed, 'time')} in the "
                 f"{V.DEFAULT_WINDOW_SECONDS / 60:.0f} minutes up to the window's end.")
        if d.rebound:
            text += (f" {d.parent} made no call after the copy was made and the copy took over: "
                     f"{V.APP}: a shared client was rebound (e.g. `client = client.with_options(api_key=tenant_key)` "
                     "on a shared client by a task that died): keep the shared client, give the task its own copy.")
        else:
            text += (f" {d.parent} kept working alongside the copy, an intentional per-tenant client: the tenant "
                     f"{'key' if 'api_key' in d.changed else 'credentials'} lacks the scope.")
    return text


def explanation(w: Window) -> str:
    """What the verdict means, citing only the evidence counted for this window."""
    d = w.diagnosis
    mutated = f" {plural(w.mutated_errors, 'error')} came from mutated clients (your app)." if w.mutated_errors else ""
    if d == V.CLIENT_MUTATED:
        return _mutated(w)
    if d == V.TOKEN_LACKS_SCOPE:
        return _token_lacks(w) + mutated
    if d == V.SCOPE_FLAPPING:
        flipped = sum(1 for c in w.process_diagnoses.values()
                      if d not in c and (V.UNKNOWN in c or V.NEVER_GRANTED in c))
        return _flapping(w, flipped) + mutated
    if d == V.CONTEXT_MISMATCH:
        return _context_mismatch(w) + mutated + _derived(w)
    if d == V.NEVER_GRANTED:
        return (f"{_cause(V.NEVER_GRANTED)}: the key never passed the scope check on these endpoints in any of the "
                f"{plural(w.processes_seen, 'process')} seen during the window: a restricted key without the "
                "scope, or the key owner's project role lacks the permission." + mutated + _derived(w))
    if w.mixed:
        return (f"{_cause(V.UNKNOWN)}: {plural(w.errors, 'error')} of keys, organizations/projects or hosts the "
                "report counted together past its caps (see the warnings): no verdict can be given for them.")
    return (f"{_cause(V.UNKNOWN)}: {plural(w.errors, 'error')}, no success of the key on these endpoints anywhere, "
            "too few failures to call it never granted.")


def _sent(w: Window) -> str:
    """`` (organization o, project p)`` when either was sent (the key tuple's context), else nothing."""
    return f" ({context(w.organization, w.project)})" if w.organization or w.project else ""


def verdict_lines(analysis: Analysis) -> list[str]:
    """Plain-language sentences, one per window: what failed, when, across how much of the fleet, and why."""
    lines = []
    for i, w in enumerate(analysis.windows, 1):
        scopes = ", ".join(w.scopes) or "scopes not named"
        who = plural(len(w.client_ids), "client")
        if w.diagnosis == V.CLIENT_MUTATED or w.mutated_errors:
            origins = "; ".join(sorted({c.origin for c in w.clients.values() if c.origin}))
            who += f" (built at {origins})" if origins else ""
            who += f", changed fields: {', '.join(w.mutated_fields)}" if w.mutated_fields else ""
        history = w.history()
        live = ""
        if len(history) > 1 or (history and history[0].diagnosis != w.diagnosis):
            live = " Live verdicts in the processes: " + " -> ".join(
                f"{p.diagnosis} ({p.errors})" for p in history) + "."
        lines.append(
            f"Window {i} [{when(analysis, w.start_ns, w.end_ns)}]: {plural(w.errors, 'scope error')} ({scopes}) "
            f"for key {w.hint or w.fingerprint or 'none'}{_sent(w)} from {who} in {len(w.processes)} of "
            f"{w.processes_seen} process(es), {w.successes_same_key} successes of the same key on these endpoints "
            "meanwhile -> "
            f"{w.diagnosis}: {explanation(w)}{live}"
        )
    return lines
