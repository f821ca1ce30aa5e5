"""The Collector's confmap merge of repeated ``--config`` files, for tests that reason about a merged config."""

from __future__ import annotations

import copy
from typing import Any


def merge(base: Any, overlay: Any) -> Any:
    """Maps merge key by key, recursively; anything else in the later file (scalars and lists alike) replaces the
    earlier value. Neither argument is modified; the result shares nothing with them."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)
