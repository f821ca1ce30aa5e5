"""A model of the Collector's redaction processor (contrib's processor.go) for the scrub tests, and the pieces of a
secret that must never appear in output."""

from __future__ import annotations

import json
import re
from typing import Any

from .collector_config import component_type
from .pipelines import confmap_unescape

# ---------------------------------------------------------------------------------------------------
# Redaction model
# ---------------------------------------------------------------------------------------------------


def redaction_configs(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Redaction processors, with "$$" turned into "$" as the collector does before they compile."""

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return confmap_unescape(node) if isinstance(node, str) else node

    return {
        cid: expand(c) for cid, c in (cfg.get("processors") or {}).items() if component_type(cid) == "redaction"
    }


def redact(rcfg: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """The redaction processor's processAttrs for string values, as in contrib's processor.go:
    ignored keys pass untouched; keys not allowed are deleted unless allow_all_keys; keys matching a
    blocked_key_pattern are masked whole; otherwise each blocked_values match is masked."""
    ignored = set(rcfg.get("ignored_keys") or [])
    allowed = set(rcfg.get("allowed_keys") or [])
    key_res = [re.compile(p) for p in rcfg.get("blocked_key_patterns") or []]
    value_res = [re.compile(p) for p in rcfg.get("blocked_values") or []]
    allow_value_res = [re.compile(p) for p in rcfg.get("allowed_values") or []]
    all_types = bool(rcfg.get("redact_all_types"))
    out = {}
    for key, value in attrs.items():
        if key in ignored:
            out[key] = value
            continue
        if not rcfg.get("allow_all_keys") and key not in allowed:
            continue
        text = value if isinstance(value, str) else go_as_string(value) if all_types else ""
        if any(r.search(text) for r in allow_value_res):
            out[key] = value
            continue
        if any(r.search(key) for r in key_res):
            out[key] = "****"
            continue
        if not isinstance(value, str) and not all_types:
            out[key] = value
            continue
        masked = text
        for r in value_res:
            masked = r.sub("****", masked)
        out[key] = masked if masked != text else value
    return out


def go_as_string(value: Any) -> str:
    """pcommon.Value.AsString() of a value: JSON for lists and maps (Go sorts map keys), the literal otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return str(value)


# ---------------------------------------------------------------------------------------------------
# Leak scanning
# ---------------------------------------------------------------------------------------------------


def secret_pieces(secret: str, allowed: str = "") -> set[str]:
    """Every 8-character piece of the secret, except pieces of what may be shown (the hint)."""
    return {secret[i:i + 8] for i in range(len(secret) - 7)} - {allowed[i:i + 8] for i in range(len(allowed) - 7)}
