"""Keep this package's attribute values through Pydantic Logfire's scrubbing.

Logfire's default scrubbing rewrites a span or event attribute whose NAME contains one of its patterns
(``api_key``, ``auth``, ``secret``, ``session``, ...), and a string VALUE that contains one unless the whole value
is the match, to ``[Scrubbed due to '...']``. This package's attribute names contain none of them, so the key
fingerprint, hint and kind always survive. Some values do contain one while saying nothing secret: an endpoint
template or operation (``/realtime/sessions``, ``realtime.client_secrets.create``), OpenAI's error code
``invalid_api_key``, a client origin in an ``auth/`` folder, a host name. They were masked by this package already
(:mod:`.redact`), so :func:`scrubbing_callback` keeps them and leaves every other value to Logfire::

    import logfire
    from otel_openai_scopes.logfire_scrubbing import scrubbing_callback

    logfire.configure(scrubbing=logfire.ScrubbingOptions(callback=scrubbing_callback()))

It keeps only string values of the attributes this package sets (:data:`KEPT_ATTRIBUTES`), never a value that looks
like a credential by redact's patterns, and hands every other match to ``then`` (your own callback) or back to
Logfire. Logfire is not imported: the callback only reads the match's ``path``, ``value`` and ``pattern_match``.
"""

from __future__ import annotations

from typing import Any, Callable

from . import attributes as A
from .redact import looks_like_credential

#: Span and span-event attributes whose values this package sets (and masks) itself. ``url.template`` and
#: ``server.address`` are semantic-convention names other instrumentations set too: a template and a host name are
#: not secrets whoever sets them (Logfire itself keeps ``http.route`` and ``url.full``).
KEPT_ATTRIBUTES: frozenset[str] = frozenset((*A.SPAN_ATTRIBUTES, A.SCOPE, A.DIAGNOSIS_PREVIOUS, A.EVENT_ATTEMPT_RETRY))
# Where Logfire's path names an attribute: ("attributes", name, ...) on spans and logs,
# ("otel_events", i, "attributes", name, ...) on span events.
_ATTRIBUTES = "attributes"


def _attribute_name(path: Any) -> Any:
    try:
        return path[path.index(_ATTRIBUTES) + 1]
    except (AttributeError, ValueError, IndexError, TypeError):
        return None


def scrubbing_callback(then: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """A ``logfire.ScrubbingOptions.callback`` that keeps this package's values (see the module docstring)."""

    def callback(match: Any) -> Any:
        value = getattr(match, "value", None)
        if isinstance(value, str) and _attribute_name(getattr(match, "path", ())) in KEPT_ATTRIBUTES \
                and not looks_like_credential(value):
            return value
        return then(match) if then is not None else None

    return callback


__all__ = ["KEPT_ATTRIBUTES", "scrubbing_callback"]
