"""Keep the packaged scope map in step with the installed ``openai`` SDK.

``python -m otel_openai_scopes.tools.scope_map_sync --check`` lists every endpoint the SDK calls that the map lacks
(exit 1 when there is one; CI runs the same check as a test). ``--write`` adds a row for each, with the scopes
``unknown`` and the reason "not yet researched", and refreshes the SDK operation names; run it with the newest SDK
installed, then research the new rows by hand. Scopes, confidence and reasons are curated in the TSV and kept as
they are: the generator owns which rows exist and their operation names, people own what they claim. Rows the SDK no
longer calls stay (older SDKs and apps still call them).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from ..endpoints import UNKNOWN_SCOPES
from ..scope_map import packaged_rows
from .sdk_endpoints import SdkCall, SdkScan, scan

COLUMNS = ("method", "template", "operation", "scopes", "confidence", "reason")
API_PREFIX = "/v1"
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
HEADER = """\
# The scope map: which scopes each endpoint of the OpenAI API needs. One row per endpoint the openai SDK calls
# (rows are added, and operation names refreshed, by `python -m otel_openai_scopes.tools.scope_map_sync --write`
# from the newest SDK; rows no SDK calls any more are kept for older SDKs). scopes, confidence and reason are
# curated here by hand, and the generator keeps them.
#   scopes      comma-separated scope strings, all required; `unknown` when no source names them (the span then
#               carries no required scope, and a success is never taken as evidence for any scope)
#   confidence  of the scope strings: H documented by OpenAI or observed in real errors for this endpoint family;
#               M a third-party list, or a string observed in real errors whose endpoint is inferred; L a guess;
#               `-` for unknown. The read/write split (GET -> read, other methods -> write) is inferred throughout.
#   reason      the evidence, or why the scopes are unknown
# synced with openai {version}
"""
_SYNCED = re.compile(r"^# synced with openai (\S+)$", re.MULTILINE)


def shape(method: str, template: str) -> tuple[str, str]:
    """An endpoint's identity: method and path with placeholders unnamed (the SDK and the map name them apart)."""
    if template.startswith(API_PREFIX + "/"):
        template = template[len(API_PREFIX):]
    return method.upper(), _PLACEHOLDER.sub("{}", template)


def missing(rows: Iterable[dict[str, str]], result: SdkScan) -> list[tuple[str, str, list[str]]]:
    """Endpoints the SDK calls that no row covers: (method, template, the SDK operations that call it)."""
    have = {shape(r["method"], r["template"]) for r in rows}
    return [(method, template, [c.operation for c in calls])
            for (method, template), calls in sorted(result.endpoints().items(), key=lambda kv: kv[0][::-1])
            if shape(method, template) not in have]


def preferred_operation(calls: Sequence[SdkCall], current: str = "") -> str:
    """The operation a row is labelled with: its current name while the SDK still has it; otherwise the first plain
    call in the SDK's order (no query such as ``?beta=true``, not a ``beta.`` alias of a GA name it also has).
    Helpers that share the endpoint (``runs.stream``) are told apart at run time by :func:`operation_for`."""
    names = [c.operation for c in calls if not c.operation.startswith("lib:")]  # helpers' modules are not names
    if current in names:
        return current
    plain = [op for op in (c.operation for c in calls if not c.query and not c.operation.startswith("lib:"))
             if not (op.startswith("beta.") and op[len("beta."):] in names)]
    return (plain or names or [""])[0]


def sync(rows: list[dict[str, str]], result: SdkScan) -> list[dict[str, str]]:
    """The rows with one added for each endpoint the SDK calls and the map lacks, operation names refreshed."""
    by_shape = {shape(r["method"], r["template"]): dict(r) for r in rows}
    for (method, template), calls in result.endpoints().items():
        key = shape(method, template)
        row = by_shape.get(key)
        if row is None:
            by_shape[key] = {"method": method, "template": API_PREFIX + template,
                             "operation": preferred_operation(calls), "scopes": UNKNOWN_SCOPES,
                             "confidence": "-", "reason": f"added from openai {result.version}: not yet researched"}
        else:
            row["operation"] = preferred_operation(calls, row.get("operation", ""))
    return sorted(by_shape.values(), key=lambda r: (shape(r["method"], r["template"])[1],
                                                    _METHOD_ORDER.get(r["method"], 9)))


def synced_version(text: str) -> str:
    """The SDK version a scope map file was last synced with ("" when it does not say)."""
    m = _SYNCED.search(text)
    return m.group(1) if m else ""


def write(rows: Iterable[dict[str, str]], path: Path, version: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(HEADER.format(version=version))
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([row.get(c) or "" for c in COLUMNS])


def packaged_path() -> Path:
    return Path(str(resources.files("otel_openai_scopes").joinpath("data/scope_map.tsv")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_openai_scopes.tools.scope_map_sync",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="add missing rows to the packaged map (edits the file)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the SDK calls an endpoint the map lacks")
    args = parser.parse_args(argv)
    result = scan()
    rows = packaged_rows()
    gaps = missing(rows, result)
    print(f"openai {result.version}: {len(result.endpoints())} endpoints; the map has {len(rows)} rows, "
          f"lacks {len(gaps)}")
    for method, template, ops in gaps:
        print(f"  missing: {method} {template}  ({', '.join(ops)})")
    for where in result.unreadable:
        print(f"  path not readable statically: {where}")
    if args.write:
        path = packaged_path()
        write(sync(rows, result), path, result.version)
        print(f"wrote {path}")
        return 0
    return 1 if gaps and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
