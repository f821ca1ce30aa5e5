"""What a failing copy's parent says: the evidence a ``copy()``/``with_options()`` client adds to a verdict.

A copy given other credentials than its parent's (``openai.client.copy_changed``) that fails a scope its parent's
credentials passed is one of two patterns, which the process tells apart by when the parent's credentials last
passed: before the copy was made and not since (a shared client rebound, ``client = client.with_options(api_key=
tenant_key)`` by a task that died: the app), or after it (the parent kept working alongside: an intentional
per-tenant client whose tenant credentials lack the scope). Either way the verdict stays the one the copy's own
history gives (``unknown``, ``never_granted``...): the copy's credentials lack the scope, which is what to fix or
to stop sending; and it is never ``client_mutated``, which means a client whose own fields changed after it was
built. This module only words the evidence, on the cold path of a changed verdict.
"""

from __future__ import annotations

from .clients import ClientInfo
from .diagnosis import Diagnosis, iso_time


def parent_evidence(diagnosis: Diagnosis, info: ClientInfo, host: str, scope: str, endpoint: str,
                    scheme: str) -> str:
    """The sentence naming the parent, where the copy was made and what it changed, when the parent's credentials
    (as it was built; for a parent whose SDK refreshes its key, as it last sent them) passed ``scope`` (or
    ``endpoint``) within the window; "" otherwise. ``scheme`` names the recorder's fingerprint scheme: a parent
    described under another one cannot be matched."""
    parent = info.parent
    changed = info.copy_changed
    if parent is None or not changed:
        return ""
    # A parent whose SDK refreshes its key (a key provider, a workload identity): what it last sent.
    if parent.key_is_callable:
        key = parent.sent_fingerprint
    else:
        key = parent.key_fingerprint if parent.scheme == scheme else None
    if not key:
        return ""  # a parent that sent nothing yet, or described in another fingerprint scheme
    cred = (key, str(parent.organization or ""), str(parent.project or ""), host)
    passed = diagnosis.last_success(cred, scope, endpoint)
    if not passed:
        return ""
    made = f"at {info.origin}" if info.origin else "(where: unknown)"
    text = (f"client {info.client_id} is a copy of client {info.parent_id} made by copy()/with_options() {made} "
            f"with {', '.join(changed)} changed; the parent's credentials passed {scope} at {iso_time(passed)}")
    if passed < info.copied_at:
        return text + (", before the copy was made, and not since: if this copy replaced a shared client "
                       "(`client = client.with_options(api_key=...)` by a task that died), that line is the bug in "
                       "your app (keep the shared client, give the task its own copy); if it serves another tenant "
                       "on purpose, that tenant's credentials lack the scope")
    return text + (", after the copy was made (the parent kept working alongside it): an intentional per-tenant "
                   f"client whose tenant {'key' if 'api_key' in changed else 'credentials'} lacks {scope}")
