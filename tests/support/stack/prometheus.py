"""Prometheus (scraping the Collector's prometheus exporter, loading rule files) and Alertmanager on free
loopback ports, and their HTTP APIs read back."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ..ports import free_port
from .binaries import Binaries, require_tool
from .collector import write_config
from .paths import CONFIG_DIR
from .procs import Managed, Process, http_get, spawn, wait_healthy

PathLike = Union[str, Path]
ALERTMANAGER_CONFIG = CONFIG_DIR / "alerts" / "alertmanager.yaml"


def prometheus_config(scrape: Sequence[str], rules: Sequence[PathLike], scrape_interval: str,
                      evaluation_interval: str, external_labels: Mapping[str, str] | None = None,
                      internal: Sequence[str] = (), alertmanager: str | None = None) -> dict[str, Any]:
    """Scrapes the Collector's prometheus exporter (honor_labels keeps job/instance from the resource, as in
    collector-config/compose/prometheus.yml) and, as job ``otelcol-internal``, the Collector's own metrics at
    ``internal``; loads the rule files; sends alerts to ``alertmanager`` (its URL)."""
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(r) for r in rules],
        "scrape_configs": [{"job_name": "otelcol-exporter", "honor_labels": True,
                            "static_configs": [{"targets": list(scrape)}]}],
    }
    if external_labels:
        cfg["global"]["external_labels"] = dict(external_labels)
    if internal:
        cfg["scrape_configs"].append({"job_name": "otelcol-internal", "static_configs": [{"targets": list(internal)}]})
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.split("//", 1)[-1]]}]}]}
    return cfg


@dataclass
class Prometheus(Managed):
    process: Process
    url: str

    @classmethod
    def start(cls, bins: Binaries, workdir: PathLike, scrape: Sequence[str], rules: Sequence[PathLike] = (),
              scrape_interval: str = "1s", evaluation_interval: str = "1s", name: str = "prometheus",
              timeout: float = 60.0, external_labels: Mapping[str, str] | None = None,
              internal: Sequence[str] = (), alertmanager: str | None = None, retention: str = "1d",
              header: str = "", detach: bool = False) -> Prometheus:
        """Prometheus with :func:`prometheus_config` written to ``workdir/<name>.yml`` (``header`` as a comment),
        its data in ``workdir/<name>-data``."""
        assert bins.prometheus is not None, "require_binaries() first"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        cfg = write_config(workdir / f"{name}.yml", prometheus_config(
            scrape, rules, scrape_interval, evaluation_interval, external_labels, internal, alertmanager), header)
        argv = [str(bins.prometheus), f"--config.file={cfg}", f"--storage.tsdb.path={workdir / (name + '-data')}",
                f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.retention.time={retention}"]
        proc = spawn(name, argv, workdir, detach=detach)
        wait_healthy(proc, f"http://127.0.0.1:{port}/-/ready", timeout)
        return cls(proc, f"http://127.0.0.1:{port}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        doc = json.loads(http_get(url, timeout=15))
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict]:  # type: ignore[type-arg]
        """Instant query; the result vector ([{"metric": {...}, "value": [t, "v"]}, ...])."""
        return list(self.api("query", query=expr)["result"])

    def value(self, expr: str) -> float:
        """Sum of an instant query's values (0.0 when empty)."""
        return sum(float(r["value"][1]) for r in self.query(expr))

    def series(self, match: str) -> list[dict[str, str]]:
        return list(self.api("series", **{"match[]": match}))

    def alerts(self) -> list[dict]:  # type: ignore[type-arg]
        """Active alerts: [{"labels": {"alertname": ...}, "state": "pending"|"firing", ...}]."""
        return list(self.api("alerts")["alerts"])

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}

    def rules(self) -> list[dict]:  # type: ignore[type-arg]
        """Loaded rules (flattened over groups), each with name, query, health, state."""
        return [r for g in self.api("rules")["groups"] for r in g["rules"]]


@dataclass
class Alertmanager(Managed):
    """Debian's Alertmanager with the shipped collector-config/alerts/alertmanager.yaml, clustering off."""

    process: Process
    url: str

    @classmethod
    def start(cls, workdir: PathLike, name: str = "alertmanager", timeout: float = 60.0) -> Alertmanager:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [require_tool("alertmanager"), f"--config.file={ALERTMANAGER_CONFIG}",
                f"--storage.path={workdir / (name + '-data')}", f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address="]
        proc = spawn(name, argv, workdir)
        wait_healthy(proc, f"http://127.0.0.1:{port}/-/ready", timeout)
        return cls(proc, f"http://127.0.0.1:{port}")

    def groups(self) -> list[dict[str, Any]]:
        return list(json.loads(http_get(self.url + "/api/v2/alerts/groups")))
