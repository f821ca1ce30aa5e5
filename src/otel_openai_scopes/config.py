"""Settings: constructor arguments first, then ``OTEL_INSTRUMENTATION_OPENAI_SCOPES_*`` variables, then defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

ENV_PREFIX = "OTEL_INSTRUMENTATION_OPENAI_SCOPES_"


@dataclass(frozen=True)
class Settings:
    """Everything the instrumentation can be told. Each field has a matching environment variable."""

    #: Put the dashboard-style key hint (``sk-proj-...WXYZ``) on spans.
    capture_key_hint: bool = True
    #: Turn the key fingerprint into an HMAC with this secret (None: plain truncated SHA-256).
    fingerprint_secret: str | None = None
    #: A TSV, JSON or YAML file that extends or overrides the packaged scope map.
    scope_map: str | None = None
    #: Record where in user code each client was constructed (``file:line``).
    capture_client_origin: bool = True
    #: Distinct key fingerprints allowed on metrics before the overflow value is used.
    max_metric_keys: int = 100
    #: Distinct templates of endpoints outside the scope map allowed on metrics before the overflow value.
    max_metric_templates: int = 200
    #: Distinct (organization, project) pairs allowed on metrics before the overflow value (for both).
    max_metric_projects: int = 100
    #: Client objects tracked at once (oldest forgotten past this; dropped clients free theirs).
    max_clients: int = 10_000
    #: Seconds of history the diagnosis looks back over.
    diagnosis_window: float = 900.0
    #: Credential tuples x scopes the diagnosis remembers.
    diagnosis_max_entries: int = 4096

    @property
    def fingerprint_key(self) -> bytes | None:
        """The HMAC key for fingerprints, as bytes, or None for plain SHA-256."""
        return self.fingerprint_secret.encode() if self.fingerprint_secret else None

    @classmethod
    def env_name(cls, field_name: str) -> str:
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = environ.get(cls.env_name(f.name))
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(raw, f.default)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:  # a typo must not stop the app from starting: say so and go on
            logging.getLogger("otel_openai_scopes").warning(
                "otel-openai-scopes: ignoring unknown settings: %s", ", ".join(sorted(unknown)))
        return cls(**values)


def _parse(raw: str, default: Any) -> Any:
    raw = raw.strip()
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
