"""Moved to :mod:`otel_openai_scopes.exporter`: the ``openai_scopes_file`` exporter is loaded into apps by
``opentelemetry-instrument``, so it lives in the runtime package. This name stays importable for existing code."""

from __future__ import annotations

from ..exporter import *  # noqa: F403 - the same names, one implementation
from ..exporter import __all__ as __all__
