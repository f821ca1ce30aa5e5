"""Every bound on what ``report`` holds, in one place: its memory depends on these, never on the input.

A telemetry file is untrusted: each distinct key, process, client, endpoint, scope set or window it names costs
memory, so each has a cap, and what lies beyond it is counted under :data:`OTHER` (with a warning saying so).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Callable, Final, TypeVar

#: Key lanes (distinct fingerprints); more are counted as one key named OTHER.
MAX_KEYS: Final = 1000
#: Process lanes; more are counted as one process named OTHER.
MAX_PROCESS_LANES: Final = 1000
#: Client lanes; more are counted as one client named OTHER.
MAX_CLIENT_LANES: Final = 200
#: Distinct endpoints (method, url.template); more are counted as one endpoint named OTHER.
MAX_ENDPOINTS: Final = 256
#: Series of successes per (key, endpoint, process); past it, further processes' successes count as process OTHER.
MAX_PASSED: Final = 20_000
#: Distinct (organization, project) pairs sent; more are counted as one pair (OTHER, OTHER). Like the runtime's
#: max_metric_projects.
MAX_CONTEXTS: Final = 100
#: Distinct hosts (server.address); more are counted as one host named OTHER.
MAX_HOSTS: Final = 64
#: Windows; past it, an error joins the nearest window of its window key, or one window named OTHER.
MAX_WINDOWS: Final = 1000
#: Entries of detail (failing client ids, described clients, processes, endpoints) all windows keep together.
MAX_WINDOW_DETAIL: Final = 100_000
#: Clients described per window (all are counted up to MAX_COUNTED); as many as client lanes, so that a part of a
#: fleet file (parallel reading) reaches it only when the lanes are full anyway.
MAX_WINDOW_CLIENTS: Final = MAX_CLIENT_LANES
#: Distinct failing clients counted per window.
MAX_COUNTED: Final = 10_000
#: Request ids kept per window (the earliest).
MAX_REQUEST_IDS: Final = 10
#: Windows' keys whose errors a process or client lane keeps apart, to colour them by verdict.
MAX_LANE_SETS: Final = 16
#: Distinct names of changed fields (openai.client.mutated) and of unknown live verdicts kept per window or lane.
MAX_NAMES: Final = 8
#: Characters kept of an id, fingerprint, hint, template or request id; of an origin (a file path and line).
MAX_TEXT: Final = 256
MAX_LONG_TEXT: Final = 1024

#: The name of what lies beyond a cap.
OTHER: Final = "(other)"

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def capped(entries: dict[K, T], key: K, cap: int, make: Callable[[K], T], other: K) -> T:
    """``entries[key]``, made on first sight while fewer than ``cap`` entries exist; beyond that the entry
    ``other``, which holds everything past the cap."""
    entry = entries.get(key)
    if entry is None:
        if len(entries) >= cap:
            key = other
            entry = entries.get(key)
        if entry is None:
            entry = entries[key] = make(key)
    return entry


class Budget:
    """A count of entries several containers may still add between them."""

    __slots__ = ("left", "spent_out")

    def __init__(self, entries: int) -> None:
        self.left = entries
        #: an entry was refused: counts kept under the budget are lower bounds
        self.spent_out = False

    def take(self) -> bool:
        if self.left > 0:
            self.left -= 1
            return True
        self.spent_out = True
        return False

    def give(self, entries: int) -> None:
        self.left += entries
