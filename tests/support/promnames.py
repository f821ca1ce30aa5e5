"""OTLP names as Prometheus shows them, and the names a PromQL expression or alert template uses."""

from __future__ import annotations

import re

from otel_openai_scopes import attributes as contract

from .collector_config import METRICS

# ---------------------------------------------------------------------------------------------------
# OTLP -> Prometheus names (UnderscoreEscapingWithSuffixes, the default of the prometheus and
# prometheusremotewrite exporters and of Prometheus' OTLP receiver)
# ---------------------------------------------------------------------------------------------------

_UNIT_SUFFIX = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "%": "percent",
}


def prom_label_name(attribute: str) -> str:
    """Attribute -> label: every character outside [a-zA-Z0-9_] becomes "_"; a leading digit gets "key_"."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    if name[:1].isdigit():
        name = "key_" + name
    return name


def prom_unit_suffix(unit: str, kind: str) -> str:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()  # annotations like {request} are dropped
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    if "/" in unit:
        num, den = unit.split("/", 1)
        parts = [_UNIT_SUFFIX.get(num, num)] if num else []
        parts += ["per", {"s": "second", "m": "minute", "h": "hour", "d": "day"}.get(den, den)]
        return "_".join(p for p in parts if p)
    return _UNIT_SUFFIX.get(unit, unit)


def prom_metric_name(name: str, unit: str, kind: str) -> str:
    """Metric -> Prometheus family name. kind: counter (monotonic sum), updowncounter, gauge, histogram."""
    base = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    base = re.sub(r"__+", "_", base).strip("_")
    suffix = prom_unit_suffix(unit, kind)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == "counter" and not base.endswith("_total"):
        base += "_total"
    return base


def prom_series_names() -> dict[str, tuple[str, str, str]]:
    """Every Prometheus series name the pipelines produce -> (otel name, unit, kind)."""
    out = {}
    for name, unit, kind in METRICS:
        family = prom_metric_name(name, unit, kind)
        if kind == "histogram":
            for s in ("_bucket", "_sum", "_count"):
                out[family + s] = (name, unit, kind)
        else:
            out[family] = (name, unit, kind)
    return out


#: Labels Prometheus series may carry: translated metric attributes plus job/instance (from the
#: resource) and le (histogram buckets).
PROM_LABELS: frozenset[str] = frozenset(
    {prom_label_name(a) for a in contract.SCOPE_ERROR_METRIC_ATTRIBUTES} | {"job", "instance", "le"}
)

# ---------------------------------------------------------------------------------------------------
# PromQL
# ---------------------------------------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "inf", "nan", "atan2",
}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) referenced by a PromQL expression."""
    labels: set[str] = set()
    for m in _SELECTOR.finditer(expr):
        labels |= {mm.group(1) for mm in _MATCHER.finditer(m.group(1))}
    stripped = _SELECTOR.sub(" ", expr)
    for m in _GROUPING.finditer(stripped):
        labels |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    stripped = _GROUPING.sub(" ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)  # range selectors
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', " ", stripped)  # string args (label_replace...)
    metrics: set[str] = set()
    for m in _IDENT.finditer(stripped):
        ident, call = m.group(1), m.group(2)
        if call or ident in _PROMQL_KEYWORDS:
            continue
        metrics.add(ident)
    return metrics, labels


_TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")


def template_labels(text: str) -> set[str]:
    return set(_TEMPLATE_LABEL.findall(text))


def parse_series(series: str) -> tuple[str, dict[str, str]]:
    """promtool input series 'name{a="b",...}' -> (name, labels)."""
    m = re.fullmatch(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*", series)
    assert m, series
    matchers = re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', m.group(2) or "")
    labels = {mm.group(1): mm.group(2) for mm in matchers}
    return m.group(1), labels
