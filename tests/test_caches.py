"""The runtime's bounded containers, as pure units: the memo type and the cap on distinct values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otel_openai_scopes.caches import BoundedCache, Cap


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 400)), max_size=200),
       st.integers(1, 20), st.integers(1, 2000))
def test_bounded_cache_never_passes_its_bounds_and_keeps_the_last_entry(puts, max_entries, max_bytes):
    cache: BoundedCache[int, int] = BoundedCache(max_entries, max_bytes)
    for key, size in puts:
        assert cache.put(key, key * 2, size) == key * 2
        if size <= max_bytes:
            assert cache.get(key) == key * 2  # what was just put is there
        assert len(cache) <= max_entries and cache.bytes <= max_bytes


def test_cap_lets_the_first_values_through_then_answers_the_overflow():
    cap = Cap(2, "_other")
    assert [cap.value(v) for v in ("a", "b", "c", "a", "b", "c")] == ["a", "b", "_other", "a", "b", "_other"]
    assert len(cap) == 2
    assert Cap(0, "_other").value("a") == "_other"
    assert cap.admit(("a", "pair")) is False and cap.admit("a") is True
