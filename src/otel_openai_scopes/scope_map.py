"""The scope map: which scopes each OpenAI endpoint needs, with user overrides.

OpenAI publishes no complete list, so the packaged map (``data/scope_map.tsv``: every endpoint the newest SDK
calls, with the confidence of its scope strings, or ``unknown`` and why) can be extended or corrected from a file
(TSV, JSON or YAML) or a mapping passed to the instrumentor. An override that cannot be read is logged with the
accepted forms and left out: the packaged map still applies, and the app starts.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Union

from .endpoints import Endpoint, EndpointMatcher, endpoints_from_rows
from .redact import safe_message

ScopeMapOverride = Union[str, Path, Mapping[str, Any], None]
#: What an override may be, as warnings say it.
ACCEPTED_FILES = ("a readable scope map file: TSV with columns method, template, operation, scopes, or JSON/YAML "
                  "mapping 'METHOD /v1/path/{id}' to scopes")
_METHOD = re.compile(r"[A-Za-z]{3,7}")
logger = logging.getLogger("otel_openai_scopes")


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


#: A scope map file larger than this is not read (the packaged one is under 100 KB).
MAX_FILE_BYTES = 8 * 1024 * 1024


def rows_from_file(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    path = Path(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml  # only needed for YAML maps

        data = yaml.safe_load(text) or {}
    elif suffix == ".json":
        data = json.loads(text)
    else:
        header = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
        if not {"method", "template"} <= set(header.strip().split("\t")):
            raise ValueError("a TSV scope map starts with the columns method, template, operation, scopes")
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


def _checked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, or ValueError naming the first one that is not ``METHOD``, ``/template``, scopes."""
    for i, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            raise ValueError(f"entry {i} is not a row of method, template, scopes")
        method, template, scopes = row.get("method"), row.get("template"), row.get("scopes")
        if not isinstance(method, str) or not _METHOD.fullmatch(method.strip()):
            raise ValueError(f"entry {i}: method must be an HTTP method such as GET")
        if not isinstance(template, str) or not template.strip().startswith("/"):
            raise ValueError(f"entry {i}: template must be a path such as /v1/things/{{thing_id}}")
        if scopes is not None and not isinstance(scopes, str) and \
                not (isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes)):
            raise ValueError(f"entry {i}: scopes must be a string or a list of strings")
    return rows


def override_rows(override: str | os.PathLike[str] | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checked rows of one override (a file or a mapping); OSError or ValueError when it cannot be used."""
    rows = _rows_from_mapping(override) if isinstance(override, Mapping) else rows_from_file(override)
    return _checked(rows)


def check_file(path: str | os.PathLike[str]) -> str:
    """Why a scope map file cannot be used ("" when it can), in a few words."""
    try:
        override_rows(path)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    except ImportError:
        return "reading YAML needs PyYAML; use TSV or JSON"
    except Exception as exc:  # noqa: BLE001 - csv, json and yaml errors: all mean "not a scope map"
        return safe_message(exc, limit=160) or type(exc).__name__
    return ""


def build_matcher(*overrides: ScopeMapOverride) -> EndpointMatcher:
    """Packaged map, then each override in order (same method and template replaces the entry). An override that
    cannot be used is logged (what and why, the accepted forms) and skipped: never an exception."""
    merged: dict[tuple[str, str], Endpoint] = {}

    def add(endpoints: Iterable[Endpoint]) -> None:
        for ep in endpoints:
            merged[(ep.method, ep.template)] = ep

    add(endpoints_from_rows(packaged_rows()))
    for override in overrides:
        if override is None or override == "":
            continue
        try:
            add(endpoints_from_rows(override_rows(override)))
        except Exception as exc:  # noqa: BLE001 - a bad override must not stop the app
            what = "mapping" if isinstance(override, Mapping) else repr(safe_message(str(override), limit=120))
            problem = "reading YAML needs PyYAML" if isinstance(exc, ImportError) else safe_message(exc, limit=160)
            logger.warning("otel-openai-scopes: scope map override %s not used (%s); accepted: %s or a mapping; "
                           "using the packaged scope map", what, problem, ACCEPTED_FILES)
    return EndpointMatcher(merged.values())
