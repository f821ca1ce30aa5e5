"""Cursor pagination, as the API does it, for every list endpoint of the fake.

A list holds ``length`` items with stable ids (``<prefix>fake<index>``), oldest first. ``after=ID`` (or ``page=ID``,
the token pages of the admin API) gives the items after that id, ``before=ID`` the ones before it, at most ``limit``
(default 20, 1..100). Every page carries ``has_more``, ``first_id``, ``last_id`` and ``next`` (the cursor of the
next page, or null), so each of the SDK's page classes (cursor, conversation-cursor, next-cursor, token) stops at
the end: without this, openai 1.35.7's auto-pagination, which ignores ``has_more``, asked for ever.
A cursor that is not an id of the list gives an empty page (nothing comes after an unknown object).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MARK = "fake"


def item_id(prefix: str, index: int) -> str:
    """The stable id of the ``index``-th item of a list whose ids start with ``prefix``."""
    return f"{prefix}{_MARK}{index:08d}"


def item_index(prefix: str, cursor: str, length: int) -> int | None:
    """The index of ``cursor`` in the list, or None when it is not one of its ids."""
    head = prefix + _MARK
    if not cursor.startswith(head) or not cursor[len(head):].isdigit():
        return None
    index = int(cursor[len(head):])
    return index if index < length else None


def limit_of(query: Mapping[str, str]) -> int:
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return DEFAULT_LIMIT
    return max(1, min(limit, MAX_LIMIT))


def page(prefix: str, length: int, query: Mapping[str, str], make: Callable[[str, int], dict[str, Any]]
         ) -> dict[str, Any]:
    """One page of a list of ``length`` items; ``make(id, index)`` builds an item."""
    limit = limit_of(query)
    start, end = 0, length
    after = query.get("after") or query.get("page")
    before = query.get("before")
    if after:
        index = item_index(prefix, after, length)
        start = length if index is None else index + 1
    if before:
        index = item_index(prefix, before, length)
        end = 0 if index is None else index
    if before and not after:
        start = max(start, end - limit)  # the page just before the cursor
    stop = min(end, start + limit)
    data = [make(item_id(prefix, i), i) for i in range(start, stop)] if start < stop else []
    has_more = stop < end if not (before and not after) else start > 0
    first = data[0]["id"] if data else None
    last = data[-1]["id"] if data else None
    return {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more,
            "next": last if has_more else None}
