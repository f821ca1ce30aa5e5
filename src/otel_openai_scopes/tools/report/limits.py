"""Every bound on what ``report`` holds, in one place: its memory depends on these, never on the input.

A telemetry file is untrusted: each distinct key, process, client, endpoint or window it names costs memory, so
each has a cap, and what lies beyond it is counted under :data:`OTHER`.
"""

from __future__ import annotations

from typing import Callable, Final, TypeVar

T = TypeVar("T")

#: Key lanes (distinct fingerprints); more are counted as one key named OTHER.
MAX_KEYS: Final = 1000
#: Process lanes; more are counted as one process named OTHER.
MAX_PROCESS_LANES: Final = 1000
#: Client lanes; more are counted as one client named OTHER.
MAX_CLIENT_LANES: Final = 200
#: Clients described per window (all are counted up to MAX_COUNTED); as many as client lanes, so that a part of a
#: fleet file (parallel reading) reaches it only when the lanes are full anyway.
MAX_WINDOW_CLIENTS: Final = MAX_CLIENT_LANES
#: Distinct failing clients counted per window.
MAX_COUNTED: Final = 10_000
#: Request ids kept per window (the earliest).
MAX_REQUEST_IDS: Final = 10
#: Windows' (key, scopes) sets whose errors a process or client lane keeps apart, to colour them by verdict.
MAX_LANE_SETS: Final = 16

#: The name of what lies beyond a cap.
OTHER: Final = "(other)"


def capped(entries: dict[str, T], key: str, cap: int, make: Callable[[str], T]) -> T:
    """``entries[key]``, made on first sight while fewer than ``cap`` entries exist; beyond that the entry named
    OTHER, which holds everything past the cap."""
    entry = entries.get(key)
    if entry is None:
        if len(entries) >= cap:
            key = OTHER
            entry = entries.get(key)
        if entry is None:
            entry = entries[key] = make(key)
    return entry
