"""Checks on a Collector config as data: pipeline wiring (what the Collector rejects at startup, plus this
project's rule that whatever leaves a pipeline was scrubbed), environment placeholders and OTTL statements."""

from __future__ import annotations

import re
from typing import Any

from .collector_config import component_type, walk_strings

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

_OTTL_ATTR = re.compile(
    r'(?:\b(?:span|spanevent|resource|datapoint|metric|log|scope)\.)?attributes\["((?:[^"\\]|\\.)*)"\]')
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
