"""The scope map: which scopes each OpenAI endpoint needs, with user overrides.

OpenAI publishes no complete list, so the packaged map (``data/scope_map.tsv``, every non-admin
``/v1`` endpoint with the confidence of its scope strings) can be extended or corrected from a
file (TSV, JSON or YAML) or a mapping passed to the instrumentor.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Union

from .endpoints import Endpoint, EndpointMatcher, endpoints_from_rows

ScopeMapOverride = Union[str, Path, Mapping[str, Any], None]


def _read_tsv(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def packaged_rows() -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("data/scope_map.tsv").read_text(encoding="utf-8")
    return _read_tsv(text)


def _rows_from_mapping(mapping: Mapping[str, Any]) -> list[dict[str, str]]:
    """``{"GET /v1/things/{id}": ["a.read"]}`` or ``{"GET /v1/x": {"scopes": [...], "operation": "x.list"}}``."""
    rows = []
    for key, value in mapping.items():
        method, _, template = str(key).strip().partition(" ")
        if not template:
            raise ValueError(f"scope map key {key!r} must be 'METHOD /path/template'")
        if isinstance(value, Mapping):
            scopes = value.get("scopes", [])
            operation = value.get("operation", "")
        else:
            scopes, operation = value, ""
        if isinstance(scopes, str):
            scopes = [s for s in scopes.replace(" ", ",").split(",") if s]
        rows.append(
            {"method": method, "template": template.strip(), "operation": str(operation or ""),
             "scopes": ",".join(str(s) for s in scopes), "confidence": "user"}
        )
    return rows


def rows_from_file(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml  # only needed for YAML maps

        data = yaml.safe_load(text) or {}
    elif suffix == ".json":
        data = json.loads(text)
    else:
        rows = _read_tsv(text)
        for row in rows:
            row.setdefault("confidence", "user")
        return rows
    if isinstance(data, Mapping) and "endpoints" in data:
        data = data["endpoints"]
    if isinstance(data, list):
        return [dict(r, confidence=r.get("confidence", "user")) for r in data]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of 'METHOD /template' to scopes")
    return _rows_from_mapping(data)


def build_matcher(*overrides: ScopeMapOverride) -> EndpointMatcher:
    """Packaged map, then each override in order (same method and template replaces the entry)."""
    merged: dict[tuple[str, str], Endpoint] = {}

    def add(endpoints: Iterable[Endpoint]) -> None:
        for ep in endpoints:
            merged[(ep.method, ep.template)] = ep

    add(endpoints_from_rows(packaged_rows()))
    for override in overrides:
        if override is None or override == "":
            continue
        if isinstance(override, Mapping):
            add(endpoints_from_rows(_rows_from_mapping(override)))
        else:
            add(endpoints_from_rows(rows_from_file(override)))
    return EndpointMatcher(merged.values())
