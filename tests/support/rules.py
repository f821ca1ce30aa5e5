"""The shipped alert rules in tests: as shipped (Prometheus configured like compose/stack.sh/Kubernetes) or with
shorter ``for:`` and intervals for tests that check who fires rather than when (expressions untouched)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .stack.binaries import Binaries
from .stack.paths import RULES
from .stack.prometheus import Prometheus

SCRAPE_INTERVAL = "10s"  # what compose/prometheus.yml, stack.sh and the Kubernetes examples ship
RUNBOOK_URL = "https://runbooks.example.com/otel-openai-scopes/RUNBOOK.md"


def fast_rules(workdir: Path, for_seconds: int = 3, rules: Path = RULES) -> Path:
    """The shipped rules with ``interval: 1s`` and every ``for:`` shortened; expressions untouched."""
    doc = yaml.safe_load(rules.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{for_seconds}s"
    out = Path(workdir) / "prometheus-rules.fast.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def shipped_expr(alert: str) -> str:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                return str(rule["expr"])
    raise KeyError(alert)


def shipped_prometheus(bins: Binaries, workdir: Path, scrape: Sequence[str],
                       alertmanager: str | None = None) -> Prometheus:
    """Prometheus configured as shipped: the rules file untouched (its own group intervals and keep_firing_for),
    scrape every 10 s, the runbook external label, alerts sent to ``alertmanager``."""
    return Prometheus.start(bins, workdir, scrape, [RULES], SCRAPE_INTERVAL, SCRAPE_INTERVAL,
                            external_labels={"openai_scopes_runbook_url": RUNBOOK_URL}, alertmanager=alertmanager)


def active_at(alert: dict[str, Any]) -> float:
    """An alert's activeAt (Prometheus' RFC 3339 with nanoseconds) as epoch seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", alert["activeAt"])
    assert m, alert["activeAt"]
    base = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + float("0." + (m[2] or "0"))
