"""The shipped Collector configs as data: where they are, loading and confmap merging, the names they may use
(derived from ``otel_openai_scopes.attributes``, the telemetry contract: nothing here retypes a contract name),
component types and the release manifests, and the anchors of the docs they link to."""

from __future__ import annotations

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

from .confmap import merge

ROOT = Path(__file__).resolve().parents[2]
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
# Markdown anchors
# ---------------------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    text = unicodedata.normalize("NFKD", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(path: Path) -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", path.read_text(), re.M)}
