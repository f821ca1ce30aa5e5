"""Settings: constructor arguments first, then ``OTEL_INSTRUMENTATION_OPENAI_SCOPES_*`` variables, then defaults.

A bad value never stops the app (``opentelemetry-instrument`` skips every instrumentor after one that raises): it
is logged once, naming the variable or argument and the accepted form, and the default is used. An ``OTEL_*``
variable that looks like one of ours but is not (a typo) is logged with the closest known name.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .redact import safe_message
from .scope_map import ACCEPTED_FILES, check_file

ENV_PREFIX = "OTEL_INSTRUMENTATION_OPENAI_SCOPES_"
#: The ``openai_scopes_file`` exporter's variable: known here so that a typo of it is caught with the others.
EXPORTER_FILE_PATH_ENV = "OTEL_EXPORTER_OPENAI_SCOPES_FILE_PATH"

logger = logging.getLogger("otel_openai_scopes")


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
        """The settings, each bad value replaced by its default with one warning (never an exception)."""
        environ = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        names = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                source, raw = f"argument {f.name}", overrides[f.name]
            else:
                raw = environ.get(cls.env_name(f.name))
                if raw is None or raw.strip() == "":
                    continue
                source = cls.env_name(f.name)
            value, accepted = parse_setting(f.name, raw, f.default)
            if accepted:
                _warn(f"{source}={_shown(f.name, raw)} is not {accepted}; using {_default_text(f.name, f.default)}")
            else:
                values[f.name] = value
        for name in sorted(set(overrides) - set(names)):  # a typo must not stop the app from starting
            _warn(f"ignoring unknown argument {name!r}{_closest(name, names, ' (did you mean {!r}?)')}")
        for name, closest in unknown_variables(environ, cls.known_variables()):
            _warn(f"ignoring unknown variable {name}: did you mean {closest}?")
        return cls(**values)

    @classmethod
    def known_variables(cls) -> list[str]:
        """Every environment variable this package reads."""
        return [cls.env_name(f.name) for f in fields(cls)] + [EXPORTER_FILE_PATH_ENV]


_TRUE = frozenset(("true", "1", "yes", "on"))
_FALSE = frozenset(("false", "0", "no", "off"))
_WHOLE = re.compile(r"\+?[0-9][0-9_]*")
#: The accepted form of each kind of setting, as the warnings say it.
BOOLEAN = "true or false"
WHOLE = "a whole number >= 1 (e.g. 10000)"
SECONDS = "a number of seconds > 0 (e.g. 900)"
TEXT = "a non-empty string"


def parse_setting(name: str, raw: Any, default: Any) -> tuple[Any, str]:
    """(value, "") for a good value of the setting ``name``; (None, the accepted form) for a bad one.

    Environment strings and constructor arguments follow the same rules: a boolean is true or false (also 1/0,
    yes/no, on/off), never a quiet false for a typo; counts are whole numbers >= 1; the window is seconds > 0;
    the scope map must be a readable map file.
    """
    text = raw.strip() if isinstance(raw, str) else None
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw, ""
        lowered = text.lower() if text is not None else None
        return (lowered in _TRUE, "") if lowered in _TRUE or lowered in _FALSE else (None, BOOLEAN)
    if isinstance(default, int):
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else \
            int(text) if text is not None and _WHOLE.fullmatch(text) else None
        return (value, "") if value is not None and value >= 1 else (None, WHOLE)
    if isinstance(default, float):
        number: float | None = None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            number = float(raw)
        elif text is not None:
            try:
                number = float(text)
            except ValueError:
                number = None
        return (number, "") if number is not None and math.isfinite(number) and number > 0 else (None, SECONDS)
    if name == "scope_map":  # the map's own reader decides what it can read
        problem = check_file(raw) if isinstance(raw, (str, os.PathLike)) else "not a path"
        return (str(raw), "") if not problem else (None, f"{ACCEPTED_FILES} ({problem})")
    return (raw, "") if isinstance(raw, str) and raw else (None, TEXT)


def unknown_variables(environ: Mapping[str, str], known: list[str]) -> Iterator[tuple[str, str]]:
    """(variable, the closest known one) for each variable that looks like ours but is not one of them: an
    ``OTEL_INSTRUMENTATION_*``/``OTEL_EXPORTER_*`` name that mentions ``OPENAI_SCOPE``, or any ``OTEL_*`` name that
    is a near miss of a known one (other instrumentations' variables are not; ``OTEL_OPENAI_SCOPES_*`` is this
    project's own test and stack configuration)."""
    known_set = set(known)
    for name in environ:
        upper = name.upper()
        if not upper.startswith("OTEL_") or name in known_set:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.9)
        if close or ("OPENAI_SCOPE" in upper and upper.startswith(("OTEL_INSTRUMENTATION_", "OTEL_EXPORTER_"))):
            yield name, (close or difflib.get_close_matches(upper, known, n=1, cutoff=0.0))[0]


def _shown(name: str, raw: Any) -> str:
    """A bad value as a warning quotes it: masked for credentials, bounded; the fingerprint secret never."""
    if name == "fingerprint_secret":
        return "(value not shown)"
    return repr(safe_message(raw if isinstance(raw, str) else repr(raw), limit=64))


def _default_text(name: str, default: Any) -> str:
    if name == "scope_map":
        return "the packaged scope map only"
    if default is None:
        return "none"
    text = str(default).lower() if isinstance(default, bool) else f"{default:g}" if isinstance(default, float) \
        else str(default)
    return f"the default {text}"


def _closest(name: str, candidates: list[str], template: str) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return template.format(close[0]) if close else ""


def _warn(message: str) -> None:
    try:
        logger.warning("otel-openai-scopes: %s", message)
    except Exception:  # noqa: BLE001 - logging itself must not break the app
        pass
