"""Helpers for tests/test_collector_config.py: collector config merging and wiring checks, component
lookup in the release manifests, OTTL / PromQL name extraction, the OTLP -> Prometheus name
translation, and a model of the redaction processor.

Everything name-related is derived from ``otel_openai_scopes.attributes`` (the telemetry contract);
nothing here retypes a contract name.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.semconv.attributes.service_attributes import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_NAMESPACE,
)

from otel_openai_scopes import attributes as contract

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "collector-config"
ALERTS_DIR = CONFIG_DIR / "alerts"
HONEYCOMB_DIR = ALERTS_DIR / "honeycomb"
K8S_DIR = CONFIG_DIR / "k8s"


SHARED_DATA = ROOT / "tests" / "data"
#: The tested release: the components of collector-config/builder-config.yaml (core/contrib v0.161.0) as the
#: built binary lists them (`scripts/stack.sh components`; tests/test_stack_validate.py keeps it current).
DIST_COMPONENTS = SHARED_DATA / "otelcol-openai-scopes-v0.161.0-components.yaml"
TARGET_VERSION = "0.161.0"
#: The newest otelcol-contrib / otelcol-k8s release manifests available offline (v0.159.0; the v0.161.0
#: manifests are not): used only for "which official distribution carries these component types".
CONTRIB_MANIFEST = SHARED_DATA / "otelcol-contrib-v0.159.0-manifest.yaml"
K8S_MANIFEST = SHARED_DATA / "otelcol-k8s-v0.159.0-manifest.yaml"

# Standalone configs (each one runs on its own) and the backend overlays applied with a second --config.
STANDALONE = ("base.yaml", "agent.yaml", "gateway.yaml")
OVERLAYS = ("jaeger.yaml", "honeycomb.yaml", "otlp.yaml")
OVERLAY_BASES = ("base.yaml", "gateway.yaml")  # overlays are designed to apply to both

# ---------------------------------------------------------------------------------------------------
# Names the configs may use
# ---------------------------------------------------------------------------------------------------

#: Attribute names the instrumentation emits (spans and metrics).
CONTRACT_ATTRIBUTES: frozenset[str] = frozenset(contract.SPAN_ATTRIBUTES) | frozenset(
    contract.SCOPE_ERROR_METRIC_ATTRIBUTES
)
#: Resource attributes the OTel SDK sets (service.name -> Prometheus job, service.instance.id ->
#: instance). Imported from the semantic-conventions package, not retyped.
RESOURCE_ATTRIBUTES: frozenset[str] = frozenset({SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID})
#: The one name no package defines: the resource attribute the signal_to_metrics connector adds to
#: what it produces ("signal_to_metrics." + service.instance.id since the type became signal_to_metrics;
#: seen on the real v0.161.0 output, tests/test_stack.py).
COLLECTOR_ATTRIBUTES: frozenset[str] = frozenset({"signal_to_metrics." + SERVICE_INSTANCE_ID})
ALLOWED_ATTRIBUTES = CONTRACT_ATTRIBUTES | RESOURCE_ATTRIBUTES | COLLECTOR_ATTRIBUTES

#: The span-derived counter computed by signal_to_metrics: the contract's counter name with a
#: ".spans" suffix, so it never collides with the SDK's own per-scope counter.
DERIVED_SCOPE_ERRORS = contract.METRIC_SCOPE_ERROR_SPANS
DERIVED_SCOPE_ERRORS_UNIT = "{span}"

#: (name, unit, kind) of every metric that reaches Prometheus.
METRICS: tuple[tuple[str, str, str], ...] = (
    (contract.METRIC_REQUESTS, contract.METRIC_REQUESTS_UNIT, "counter"),
    (contract.METRIC_SCOPE_ERRORS, contract.METRIC_SCOPE_ERRORS_UNIT, "counter"),
    (contract.METRIC_DURATION, contract.METRIC_DURATION_UNIT, "histogram"),
    (DERIVED_SCOPE_ERRORS, DERIVED_SCOPE_ERRORS_UNIT, "counter"),
)

# ---------------------------------------------------------------------------------------------------
# Loading and merging
# ---------------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_config(name: str) -> dict[str, Any]:
    return load_yaml(CONFIG_DIR / name)


def merge(base: Any, overlay: Any) -> Any:
    """Merge like the collector's confmap does for repeated --config: maps are merged key by key,
    recursively; anything else in the later file (scalars and lists alike) replaces the earlier one.
    """
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def merged(*names: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in names:
        result = merge(result, load_config(name))
    return result


def walk_strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


# ---------------------------------------------------------------------------------------------------
# Component types from the release manifests
# ---------------------------------------------------------------------------------------------------

CLASSES = ("receivers", "processors", "exporters", "connectors", "extensions")
_SUFFIX = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "connectors": "connector",
    "extensions": "extension",
}
#: The one type whose name is not its module's name with the class suffix removed and underscores
#: dropped: core's exporter/otlpexporter registers ``otlp_grpc`` (deprecated alias ``otlp``).
TYPE_EXCEPTIONS = {("exporters", "otlp_grpc"): "otlp"}
#: Deprecated aliases and removed components the configs must not use (research notes section 0 and
#: "common mistakes"): old non-snake_case names still load on v0.159 but log warnings; batch is
#: being deprecated in favour of exporter batching; count is unmaintained; the routing processor
#: and the logging exporter are gone.
FORBIDDEN_TYPES = {
    ("exporters", "otlp"),
    ("exporters", "otlphttp"),
    ("exporters", "loadbalancing"),
    ("exporters", "prometheusremotewrite"),
    ("exporters", "logging"),
    ("connectors", "spanmetrics"),
    ("connectors", "signaltometrics"),
    ("connectors", "count"),
    # v0.161.0 logs '"deltatocumulative" alias is deprecated; use "delta_to_cumulative"' (seen on the real binary)
    ("processors", "deltatocumulative"),
    ("processors", "batch"),
    ("processors", "routing"),
}


def manifest_modules(path: Path) -> dict[str, set[str]]:
    """Per class, the module names of the manifest with the class suffix removed.

    ``.../exporter/loadbalancingexporter v0.159.0`` -> ``loadbalancing``;
    ``.../extension/storage/filestorage`` -> ``filestorage`` (no suffix to remove).
    """
    doc = load_yaml(path)
    out: dict[str, set[str]] = {}
    for cls in CLASSES:
        names = set()
        for entry in doc.get(cls) or []:
            module = (entry.get("import") or entry["gomod"].split()[0]).rstrip("/")
            last = module.split("/")[-1]
            suffix = _SUFFIX[cls]
            if last.endswith(suffix) and last != suffix:
                last = last[: -len(suffix)]
            names.add(last)
        out[cls] = names
    return out


def distribution_types(path: Path = DIST_COMPONENTS) -> dict[str, set[str]]:
    """Per class, the component type names a built distribution lists (`otelcol components` output)."""
    doc = load_yaml(path)
    return {cls: {c["name"] for c in doc.get(cls) or []} for cls in CLASSES}


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def type_in_manifest(modules: dict[str, set[str]], cls: str, ctype: str) -> bool:
    squashed = TYPE_EXCEPTIONS.get((cls, ctype), ctype.replace("_", ""))
    return squashed in modules[cls]


def used_components(cfg: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(class, component id) for everything defined in the config."""
    for cls in CLASSES:
        for cid in (cfg.get(cls) or {}):
            yield cls, cid


# ---------------------------------------------------------------------------------------------------
# Pipeline wiring
# ---------------------------------------------------------------------------------------------------

# (exporter-side signal, receiver-side signal) pairs each connector type supports.
CONNECTOR_SIGNALS = {
    "routing": {("traces", "traces"), ("metrics", "metrics"), ("logs", "logs")},
    "forward": {("traces", "traces"), ("metrics", "metrics"), ("logs", "logs")},
    "signal_to_metrics": {("traces", "metrics"), ("metrics", "metrics"), ("logs", "metrics")},
    "span_metrics": {("traces", "metrics")},
}
SCRUB_PROCESSORS = ("redaction",)


def pipeline_signal(pipeline_id: str) -> str:
    return pipeline_id.split("/", 1)[0]


def wiring_problems(cfg: dict[str, Any]) -> list[str]:
    """Everything the collector would reject at startup plus this project's own rules."""
    problems: list[str] = []
    service = cfg.get("service") or {}
    pipelines: dict[str, dict[str, list[str]]] = service.get("pipelines") or {}
    receivers = cfg.get("receivers") or {}
    processors = cfg.get("processors") or {}
    exporters = cfg.get("exporters") or {}
    connectors = cfg.get("connectors") or {}
    extensions = cfg.get("extensions") or {}

    if not pipelines:
        return ["no pipelines"]

    used = {"receivers": set(), "processors": set(), "exporters": set(), "connectors_in": {}, "connectors_out": {}}
    for pid, p in pipelines.items():
        signal = pipeline_signal(pid)
        if signal not in ("traces", "metrics", "logs"):
            problems.append(f"{pid}: unknown signal {signal!r}")
        unknown_keys = set(p) - {"receivers", "processors", "exporters"}
        if unknown_keys:
            problems.append(f"{pid}: unknown keys {sorted(unknown_keys)}")
        if not p.get("receivers"):
            problems.append(f"{pid}: no receivers")
        if not p.get("exporters"):
            problems.append(f"{pid}: no exporters")
        # A connector is an exporter of one pipeline and a receiver of another; never a processor.
        for role, defined, as_connector in (("receiver", receivers, "connectors_out"),
                                            ("processor", processors, None),
                                            ("exporter", exporters, "connectors_in")):
            for name in p.get(role + "s") or []:
                if as_connector and name in connectors:
                    used[as_connector].setdefault(name, []).append(pid)
                elif name in defined:
                    used[role + "s"].add(name)
                else:
                    problems.append(f"{pid}: {role} {name} is not defined")
        procs = p.get("processors") or []
        if procs and component_type(procs[0]) != "memory_limiter":
            problems.append(f"{pid}: memory_limiter is not the first processor ({procs[0]})")
        for dup in {x for x in procs if procs.count(x) > 1}:
            problems.append(f"{pid}: processor {dup} listed twice")

    for cls, defined, seen in (
        ("receiver", receivers, used["receivers"]),
        ("processor", processors, used["processors"]),
        ("exporter", exporters, used["exporters"]),
    ):
        for cid in defined:
            if cid not in seen:
                problems.append(f"{cls} {cid} is defined but used in no pipeline")

    for cid in connectors:
        ins = used["connectors_in"].get(cid, [])
        outs = used["connectors_out"].get(cid, [])
        if not ins:
            problems.append(f"connector {cid} is an exporter in no pipeline")
        if not outs:
            problems.append(f"connector {cid} is a receiver in no pipeline")
        if set(ins) & set(outs):
            problems.append(f"connector {cid} feeds the pipeline it comes from")
        allowed = CONNECTOR_SIGNALS.get(component_type(cid))
        if allowed is None:
            problems.append(f"connector {cid}: no signal table for type {component_type(cid)!r}")
            continue
        for i in ins:
            for o in outs:
                if (pipeline_signal(i), pipeline_signal(o)) not in allowed:
                    problems.append(f"connector {cid}: {i} -> {o} is not a supported signal pair")

    # Routing tables must name pipelines that exist and receive from that very connector.
    for cid, ccfg in connectors.items():
        if component_type(cid) != "routing":
            continue
        table = (ccfg or {}).get("table") or []
        if not table:
            problems.append(f"connector {cid}: empty routing table")
        targets = [t for route in table for t in route.get("pipelines", [])]
        targets += (ccfg or {}).get("default_pipelines") or []
        for t in targets:
            if t not in pipelines:
                problems.append(f"connector {cid}: routes to unknown pipeline {t}")
            elif cid not in (pipelines[t].get("receivers") or []):
                problems.append(f"connector {cid}: routes to {t}, which does not receive from it")
        for route in table:
            if ("condition" in route) == ("statement" in route):
                problems.append(f"connector {cid}: each route needs exactly one of condition/statement")

    for ext in extensions:
        if ext not in (service.get("extensions") or []):
            problems.append(f"extension {ext} is defined but not enabled in service.extensions")
    for ext in service.get("extensions") or []:
        if ext not in extensions:
            problems.append(f"service.extensions names undefined extension {ext}")

    problems.extend(scrub_problems(cfg))
    return problems


def scrubbed_pipelines(cfg: dict[str, Any]) -> set[str]:
    """Pipelines whose data went through a redaction processor: those that run one, and those fed
    only by connectors whose every upstream pipeline is scrubbed (fixed point)."""
    pipelines = cfg["service"]["pipelines"]
    connectors = cfg.get("connectors") or {}
    upstream: dict[str, list[str]] = {}
    for pid, p in pipelines.items():
        for e in p.get("exporters") or []:
            if e in connectors:
                upstream.setdefault(e, []).append(pid)
    scrubbed = {
        pid
        for pid, p in pipelines.items()
        if any(component_type(x) in SCRUB_PROCESSORS for x in p.get("processors") or [])
    }
    changed = True
    while changed:
        changed = False
        for pid, p in pipelines.items():
            if pid in scrubbed:
                continue
            recs = p.get("receivers") or []
            if recs and all(r in connectors and upstream.get(r) and set(upstream[r]) <= scrubbed for r in recs):
                scrubbed.add(pid)
                changed = True
    return scrubbed


def scrub_problems(cfg: dict[str, Any]) -> list[str]:
    problems = []
    pipelines = cfg["service"]["pipelines"]
    connectors = cfg.get("connectors") or {}
    scrubbed = scrubbed_pipelines(cfg)
    for pid, p in pipelines.items():
        leaves = [e for e in p.get("exporters") or [] if e not in connectors]
        if leaves and pid not in scrubbed:
            problems.append(f"{pid}: exports {leaves} without passing a redaction processor")
        fans_out = len(p.get("exporters") or []) > 1 or any(e in connectors for e in p.get("exporters") or [])
        if fans_out and pid not in scrubbed:
            problems.append(f"{pid}: fans out before redaction")
        routes = [e for e in p.get("exporters") or [] if component_type(e) in ("routing", "forward")]
        if routes and not any(component_type(x) in SCRUB_PROCESSORS for x in p.get("processors") or []):
            problems.append(f"{pid}: feeds {routes} without a redaction processor in the same pipeline")
    return problems


# ---------------------------------------------------------------------------------------------------
# Environment placeholders
# ---------------------------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def placeholder_problems(value: str) -> list[str]:
    """Every "$" must start "$$" (a literal dollar) or a ${env:NAME} / ${env:NAME:-default}."""
    problems = []
    i = 0
    while i < len(value):
        if value[i] != "$":
            i += 1
            continue
        if value.startswith("$$", i):
            i += 2
            continue
        m = _ENV_REF.match(value, i)
        if not m:
            problems.append(f"bad '$' at {i} in {value!r}")
            i += 1
            continue
        i = m.end()
    return problems


def env_vars(cfg: Any) -> set[str]:
    return {m.group(1) for _, s in walk_strings(cfg) for m in _ENV_REF.finditer(s)}


def confmap_unescape(value: str) -> str:
    """What a value looks like after the collector's expansion for the parts tests care about:
    "$$" -> "$" (env references are left alone)."""
    return value.replace("$$", "$")


# ---------------------------------------------------------------------------------------------------
# OTTL
# ---------------------------------------------------------------------------------------------------

_OTTL_ATTR = re.compile(r'(?:\b(?:span|spanevent|resource|datapoint|metric|log|scope)\.)?attributes\["((?:[^"\\]|\\.)*)"\]')
_OTTL_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def ottl_attribute_names(statement: str) -> set[str]:
    return {m.group(1) for m in _OTTL_ATTR.finditer(statement)}


def ottl_string_literals(statement: str) -> list[str]:
    """String literals of an OTTL statement, unescaped the way OTTL does (\\\\ -> \\, \\" -> ")."""
    return [re.sub(r"\\(.)", r"\1", m.group(1)) for m in _OTTL_STRING.finditer(statement)]


def ottl_statements(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """(component id, OTTL text) for every statement/condition/value expression in the config."""
    out = []
    for cls in ("processors", "connectors"):
        for cid, ccfg in (cfg.get(cls) or {}).items():
            ctype = component_type(cid)
            ccfg = ccfg or {}
            if ctype == "transform":
                for key in ("trace_statements", "metric_statements", "log_statements"):
                    for group in ccfg.get(key) or []:
                        for st in group["statements"] if isinstance(group, dict) else [group]:
                            out.append((cid, st))
            elif ctype == "routing":
                for route in ccfg.get("table") or []:
                    out.append((cid, route.get("condition") or route.get("statement")))
            elif ctype == "signal_to_metrics":
                for signal in ("spans", "datapoints", "logs"):
                    for metric in ccfg.get(signal) or []:
                        for cond in metric.get("conditions") or []:
                            out.append((cid, cond))
                        for kind in ("sum", "histogram", "exponential_histogram"):
                            for field in ("value", "count"):
                                if kind in metric and field in metric[kind]:
                                    out.append((cid, str(metric[kind][field])))
            elif ctype in ("filter",):
                for _, s in walk_strings(ccfg):
                    out.append((cid, s))
            elif ctype == "tail_sampling":
                for path, s in walk_strings(ccfg):
                    if "ottl_condition" in path:
                        out.append((cid, s))
    return out


def structured_attribute_names(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """(component id, attribute name) named as plain config values: signal_to_metrics attributes and
    resource attributes, span_metrics dimensions, tail sampling policy keys, redaction ignored keys."""
    out = []
    for cls in ("processors", "connectors"):
        for cid, ccfg in (cfg.get(cls) or {}).items():
            ctype = component_type(cid)
            ccfg = ccfg or {}
            if ctype == "signal_to_metrics":
                for signal in ("spans", "datapoints", "logs"):
                    for metric in ccfg.get(signal) or []:
                        for a in (metric.get("attributes") or []) + (metric.get("include_resource_attributes") or []):
                            out.append((cid, a["key"]))
            elif ctype == "span_metrics":
                for d in ccfg.get("dimensions") or []:
                    out.append((cid, d["name"]))
            elif ctype == "tail_sampling":
                for path, s in walk_strings(ccfg):
                    if path and path[-1] == "key":
                        out.append((cid, s))
            elif ctype == "redaction":
                for k in ccfg.get("ignored_keys") or []:
                    out.append((cid, k))
    return out


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
    labels = {mm.group(1): mm.group(2) for mm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', m.group(2) or "")}
    return m.group(1), labels


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


# ---------------------------------------------------------------------------------------------------
# Markdown anchors
# ---------------------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    text = unicodedata.normalize("NFKD", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(path: Path) -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", path.read_text(), re.M)}
