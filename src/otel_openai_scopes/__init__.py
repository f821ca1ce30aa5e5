"""OpenTelemetry instrumentation for the OpenAI Python SDK that explains ``Missing scopes`` 401s.

Every OpenAI API call becomes a CLIENT span and metric records tagged with a safe fingerprint of
the credential actually sent, the scopes the endpoint needs, the scopes an error says are missing,
the endpoint template and the identity of the client object, plus a live diagnosis of each
scope error. Names: :mod:`otel_openai_scopes.attributes`.
"""

from .instrumentor import OpenAIScopesInstrumentor
from .version import __version__

__all__ = ["OpenAIScopesInstrumentor", "__version__"]
