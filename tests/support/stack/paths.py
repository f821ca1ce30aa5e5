"""Where the stack's pieces are: the shipped configs of this checkout, the versions we build, the cache that
``scripts/stack.sh build`` fills and the state directory of ``scripts/stack.sh up``."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "collector-config"
BUILDER_CONFIG = CONFIG_DIR / "builder-config.yaml"
LOOPBACK_OVERLAY = CONFIG_DIR / "stack" / "loopback.yaml"
JAEGER_CONFIG = CONFIG_DIR / "stack" / "jaeger-v2.yaml"
RULES = CONFIG_DIR / "alerts" / "prometheus-rules.yaml"
RUNBOOK = CONFIG_DIR / "alerts" / "RUNBOOK.md"

OTELCOL_VERSION = "0.161.0"
JAEGER_VERSION = "1.75.0"  # cmd/jaeger v1.75.0 = Jaeger 2.12.0
OTELCOL_NAME = "otelcol-openai-scopes"


def cache_root() -> Path:
    """``$OTEL_OPENAI_SCOPES_CACHE`` or ``~/.cache/otel-openai-scopes``: outside the repository, kept across
    checkouts (the Go builds take minutes)."""
    env = os.environ.get("OTEL_OPENAI_SCOPES_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "otel-openai-scopes"


def stack_cache() -> Path:
    return cache_root() / "stack"


def builder_hash() -> str:
    """The Collector's cache key: sha256 of builder-config.yaml, first 12 hex digits (a changed manifest builds
    a new binary beside the old one)."""
    return hashlib.sha256(BUILDER_CONFIG.read_bytes()).hexdigest()[:12]


def cached_otelcol() -> Path:
    return stack_cache() / f"otelcol-{OTELCOL_VERSION}-{builder_hash()}" / OTELCOL_NAME


def cached_jaeger() -> Path:
    return stack_cache() / f"jaeger-{JAEGER_VERSION}" / "jaeger"


def cached_builder() -> Path:
    return stack_cache() / "tools" / f"builder-v{OTELCOL_VERSION}" / "builder"


def state_dir() -> Path:
    """Where ``up`` keeps configs, logs, pids and data: ``$OTEL_OPENAI_SCOPES_STATE`` or
    ``$TMPDIR/otel-openai-scopes-stack-<uid>``."""
    env = os.environ.get("OTEL_OPENAI_SCOPES_STATE")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"otel-openai-scopes-stack-{os.getuid()}"
