"""Describe the sent credential, once: what an attempt carried, as a frozen record.

The credential headers are read once per attempt (:func:`read_sent`), and each distinct combination
(``Authorization``, ``api-key``, ``OpenAI-Organization``, ``OpenAI-Project``, and any other header or
query parameter whose name says credential) is described once by
:func:`describe_sent` (the recorder memoises it): fingerprint, kind and hint of the credential, every
secret to mask in text that comes back (a token's claim values too), the scopes a token's own claims grant,
organization and project as sent, and the span and metric attributes they give. Everything downstream
(mutation check, masking, diagnosis key, attributes) reads this record; nothing reads the key again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from . import attributes as A
from .fingerprint import NO_CREDENTIAL, Credential
from .headers import REQUEST_HEADERS, pick_headers, query_credentials
from .redact import mask_value

#: (Authorization, api-key, OpenAI-Organization, OpenAI-Project, other credentials) as sent; None where not
#: sent. The last is a tuple of the values of other headers and query parameters whose names say credential.
SentHeaders = tuple[Any, ...]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: it keys the metric-attribute memo
class SentCredential:
    """One attempt's credential and context, described. ``secrets`` never leave the process: they only
    drive masking."""

    fingerprint: str  # "" when no credential was sent
    kind: str
    hint: str
    #: Whether the request carried a credential header (else the client's key is judged from the client).
    carried: bool
    #: Every credential the request carried, for masking text that comes back (error bodies, headers).
    secrets: tuple[str, ...]
    organization: str  # as sent ("" when not sent): part of the diagnosis's key tuple
    project: str
    span_attrs: Mapping[str, Any]
    #: The credential's metric attributes, capped (fingerprint, hint, organization, project).
    metric_attrs: Mapping[str, Any]
    #: Scopes a token's own claims grant (scope grammar, bounded; () for keys), and whether that list is the
    #: whole grant (a scope absent from it is then certainly not granted).
    granted: tuple[str, ...] = ()
    grant_complete: bool = False

    def grants(self, scope: str) -> bool | None:
        """Whether the credential's own claims grant ``scope`` (None when they do not say)."""
        if scope in self.granted:
            return True
        return False if self.grant_complete else None

    @property
    def secret(self) -> str | None:
        """The main credential (the key or token), if one was sent."""
        return self.secrets[0] if self.secrets else None


def read_sent(request: Any) -> SentHeaders:
    """The credential headers of a request as sent (one pass over its headers), with every other credential
    it carries: headers and query parameters whose names say credential."""
    others: list[str] = []
    auth, api_key, org, project = pick_headers(request.headers, REQUEST_HEADERS, others)
    query = getattr(getattr(request, "url", None), "query", None)
    if query:
        others.extend(query_credentials(query))
    return (auth, api_key, org, project, tuple(others))


def sent_by_client(client: Any) -> SentHeaders:
    """When no attempt was seen (the call failed before sending): what the client would have sent."""
    key = getattr(client, "api_key", None)
    return (None, key if isinstance(key, str) else None, getattr(client, "organization", None),
            getattr(client, "project", None), ())


@dataclass(frozen=True)
class Describers:
    """How credentials are described and capped: functions passed in, so this step stays pure."""

    from_authorization: Callable[[str], Credential]  # an Authorization header value -> its credential
    from_key: Callable[[str], Credential]  # a bare key (Azure's api-key header)
    secret_of: Callable[[str], str | None]  # the credential inside an Authorization value
    capture_hint: bool
    metric_fingerprint: Callable[[str], str]  # fingerprint -> itself or the overflow value
    #: (organization, project) as shown -> themselves or the overflow value for both.
    metric_context: Callable[[str, str], tuple[str, str]]


def describe_sent(sent: SentHeaders, how: Describers) -> SentCredential:
    """Fingerprint, kind, hint, secrets, organization and project of what an attempt sent, with the span
    and metric attributes they give."""
    auth, api_key, org, project, others = sent
    if auth:
        cred, secret = how.from_authorization(auth), how.secret_of(auth)
        others = (api_key, *others) if api_key else others  # an api-key header beside it is a secret too
    else:  # Azure: an api-key header
        cred, secret = (how.from_key(api_key) if api_key else NO_CREDENTIAL), api_key
    # A token's claim values (subject, e-mail...) are masked like the token itself in text that comes back.
    secrets = tuple(dict.fromkeys(s for s in (secret, *others, *cred.private) if s))
    span: dict[str, Any] = {A.KEY_KIND: cred.kind}
    if cred.granted or cred.grant_complete:
        span[A.SCOPE_GRANTED] = cred.granted
    metric: dict[str, Any] = {}
    if cred.fingerprint:
        span[A.KEY_FINGERPRINT] = cred.fingerprint
        shown_fp = metric[A.KEY_FINGERPRINT] = how.metric_fingerprint(cred.fingerprint)
        if how.capture_hint:
            span[A.KEY_HINT] = cred.hint
            metric[A.KEY_HINT] = cred.hint if shown_fp == cred.fingerprint else A.FINGERPRINT_OVERFLOW
    else:
        metric[A.KEY_FINGERPRINT] = A.NO_FINGERPRINT
    shown_org = (mask_value(str(org), *secrets) or "***") if org else ""
    shown_project = (mask_value(str(project), *secrets) or "***") if project else ""
    if shown_org:
        span[A.ORGANIZATION] = shown_org
    if shown_project:
        span[A.PROJECT] = shown_project
    if shown_org or shown_project:
        metric_org, metric_project = how.metric_context(shown_org, shown_project)
        if shown_org:
            metric[A.ORGANIZATION] = metric_org
        if shown_project:
            metric[A.PROJECT] = metric_project
    return SentCredential(cred.fingerprint, cred.kind, cred.hint, auth is not None or api_key is not None, secrets,
                          str(org or ""), str(project or ""), span, metric, cred.granted, cred.grant_complete)


def approximate_size(sent: SentHeaders) -> int:
    """Bytes a described credential holds, about (for the memo's byte bound)."""
    values = [v for v in sent[:4] if isinstance(v, str)] + [v for v in sent[4] if isinstance(v, str)]
    return 1500 + 2 * sum(len(v) for v in values)
