"""Reading the few headers the instrumentation needs, in one pass over the raw header list, and the
credentials a request carries outside ``Authorization``/``api-key``.

The SDK's ``httpx``/``httpx2`` ``Headers`` keep ``(raw name, lower-cased name, value)`` triples; one ``get``
scans that list each time, so the wanted headers are picked in a single walk (other header types are
asked by name). The same walk collects the values of headers whose names say credential (a gateway's
``X-Gateway-Key``, ``X-Auth-Token``, ``Cookie``...), and :func:`query_credentials` the values of such query
parameters (``?key=``, ``?token=``, ``?sig=``): they are masking secrets like the key itself.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl

from .caches import BoundedCache
from .limits import (
    MAX_CREDENTIAL_NAMES,
    MAX_HEADER_PLAN_BYTES,
    MAX_HEADER_PLANS,
    MAX_QUERIES,
    MAX_QUERY_BYTES,
    MAX_QUERY_CHARS,
)

#: Request headers as sent: (Authorization, api-key, OpenAI-Organization, OpenAI-Project).
REQUEST_HEADERS = {b"authorization": 0, b"api-key": 1, b"openai-organization": 2, b"openai-project": 3}
#: Response headers: (x-request-id, openai-organization, openai-project).
RESPONSE_HEADERS = {b"x-request-id": 0, b"openai-organization": 1, b"openai-project": 2}

#: A header or query parameter name that says its value is a credential (anywhere in the name, any case).
CREDENTIAL_NAME = re.compile(r"key|token|secret|auth|sig|pass|pwd|credential|cookie|session|jwt", re.IGNORECASE)
_NAMES: BoundedCache[bytes, bool] = BoundedCache(MAX_CREDENTIAL_NAMES, MAX_CREDENTIAL_NAMES * 200)
_QUERIES: BoundedCache[bytes, tuple[str, ...]] = BoundedCache(MAX_QUERIES, MAX_QUERY_BYTES)

#: Where the wanted headers and the credential-named ones sit in a header list with given (lower-cased) names:
#: ((slot in ``wanted``, position of its first value), ...) and the positions of credential-named others, in
#: order. The SDK sends the same names call after call, so the names are joined in C and the rest is one
#: lookup instead of a Python loop over every header of every request. Keyed on (number of headers, names
#: joined by a newline): a list whose names contain no newline only shares a key with itself, and lists with
#: a newline in a name are never memoised (see :func:`_plan`).
Plan = tuple[tuple[tuple[int, int], ...], tuple[int, ...]]
PlanKey = tuple[int, bytes]
_PLANS: dict[int, BoundedCache[PlanKey, Plan]] = {
    id(REQUEST_HEADERS): BoundedCache(MAX_HEADER_PLANS, MAX_HEADER_PLAN_BYTES),
    id(RESPONSE_HEADERS): BoundedCache(MAX_HEADER_PLANS, MAX_HEADER_PLAN_BYTES),
}
_NAME_OF = itemgetter(1)


def header(headers: Any, name: str) -> Any:
    """``headers.get(name)``, or None from a header container that cannot answer."""
    try:
        return headers.get(name)
    except Exception:  # noqa: BLE001 - odd header containers must not break the call
        return None


def says_credential(name: bytes) -> bool:
    """Whether a (lower-cased) header name says credential; memoised per name."""
    flag = _NAMES.get(name)
    if flag is None:
        flag = _NAMES.put(name, CREDENTIAL_NAME.search(name.decode("latin-1")) is not None, 100 + 2 * len(name))
    return flag


def pick_headers(headers: Any, wanted: dict[bytes, int], credentials: list[str] | None = None) -> list[str | None]:
    """The ``wanted`` headers' first values, in ``wanted``'s order (None where absent); with ``credentials``,
    the values of the other headers whose names say credential are appended to it."""
    out: list[str | None] = [None] * len(wanted)
    items = getattr(headers, "_list", None)  # httpx / httpx2: (raw key, lower-cased key, value) triples
    if type(items) is list:
        plans = _PLANS.get(id(wanted)) if wanted is REQUEST_HEADERS or wanted is RESPONSE_HEADERS else None
        if plans is not None:
            plan_key = (len(items), b"\n".join(map(_NAME_OF, items)))
            plan = plans.get(plan_key) or _plan(plans, plan_key, items, wanted)
            for slot, at in plan[0]:
                out[slot] = items[at][2].decode("latin-1")
            if credentials is not None and plan[1]:
                credentials.extend(items[at][2].decode("latin-1") for at in plan[1])
            return out
        names = _NAMES
        for _raw, key, value in items:
            i = wanted.get(key)
            if i is not None:
                if out[i] is None:
                    out[i] = value.decode("latin-1")
            elif credentials is not None:
                flag = names.get(key)
                if flag is None:
                    flag = says_credential(key)
                if flag:
                    credentials.append(value.decode("latin-1"))
        return out
    for name, i in wanted.items():  # another Headers type: look each one up by name
        value = header(headers, name.decode())
        out[i] = value if isinstance(value, str) else None
    if credentials is not None:
        try:
            pairs = list(headers.items())
        except Exception:  # noqa: BLE001
            pairs = []
        credentials.extend(v for k, v in pairs if isinstance(k, str) and isinstance(v, str)
                           and k.lower().encode("latin-1", "replace") not in wanted
                           and says_credential(k.lower().encode("latin-1", "replace")))
    return out


def _plan(plans: BoundedCache[PlanKey, Plan], key: PlanKey, items: list[Any], wanted: dict[bytes, int]) -> Plan:
    """Where ``wanted`` and the credential-named headers are in ``items`` (memoised under ``key`` unless a name
    holds the key's separator)."""
    first: dict[int, int] = {}
    others: list[int] = []
    clean = True
    for at, (_raw, name, _value) in enumerate(items):
        clean = clean and b"\n" not in name
        i = wanted.get(name)
        if i is not None:
            first.setdefault(i, at)
        elif says_credential(name):
            others.append(at)
    plan = (tuple(first.items()), tuple(others))
    return plans.put(key, plan, 200 + 2 * len(key[1]) + 60 * len(items)) if clean else plan


def query_credentials(query: bytes) -> tuple[str, ...]:
    """Values of the query parameters whose names say credential (memoised per query string)."""
    hit = _QUERIES.get(query)
    if hit is None:
        text = query[:MAX_QUERY_CHARS].decode("latin-1")
        found = tuple(v for k, v in parse_qsl(text, keep_blank_values=False) if CREDENTIAL_NAME.search(k))
        # The raw (percent-encoded) form is what a gateway quoting the URL shows.
        found += tuple(raw for raw in (p.partition("=")[2] for p in text.split("&")
                                       if CREDENTIAL_NAME.search(p.partition("=")[0]))
                       if raw and raw not in found)
        hit = _QUERIES.put(query, found, 200 + 4 * len(query))
    return hit
