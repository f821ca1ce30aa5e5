"""Every bound of the runtime's call path, in one place: what a cache, a cap or a log may hold.

Bounds set by users are settings (:mod:`.config`: ``max_clients``, ``max_metric_keys``,
``max_metric_templates``, ``max_metric_projects``, ``diagnosis_max_entries``). The masking windows
(:mod:`.redact`), error-body parsing (:mod:`.scope_errors`) and the diagnosis's per-scope sets
(:mod:`.diagnosis`) keep their own bounds beside the code they bound.
"""

from __future__ import annotations

from typing import Final

# --- per call ------------------------------------------------------------------------------------
#: ``openai.attempt`` events kept on one span (retries past this are counted in ``openai.attempts`` only).
MAX_ATTEMPT_EVENTS: Final = 16
#: Characters of the host kept on spans and metrics.
MAX_HOST_CHARS: Final = 255
#: Base-path segments at least this long, shown as ``{token}``, are masking secrets of the client.
MIN_PATH_SECRET_CHARS: Final = 8

# --- caches (entries and approximate bytes) ------------------------------------------------------
#: (client, method, URL) -> resolved endpoint, shared by all clients.
MAX_ENDPOINTS: Final = 4096
MAX_ENDPOINT_BYTES: Final = 2 * 1024 * 1024
#: Longer URLs (rare) are matched every time rather than cached (here and in the matcher's own cache).
MAX_CACHED_URL_CHARS: Final = 256
#: Credential headers as sent -> their description (fingerprint, kind, hint, attributes).
MAX_SENT_CREDENTIALS: Final = 1024
MAX_SENT_CREDENTIAL_BYTES: Final = 4 * 1024 * 1024
#: Distinct keys whose fingerprint and kind are memoised (``fingerprint.CredentialCache``).
MAX_DESCRIBED_KEYS: Final = 1024
#: Response header values (organization, project) masked once per (value, credential).
MAX_MASKED_VALUES: Final = 1024
MAX_MASKED_VALUE_BYTES: Final = 1024 * 1024
#: Error bodies parsed and masked once per (status, message, code, type, credentials).
MAX_CACHED_ERRORS: Final = 256
MAX_CACHED_ERROR_BYTES: Final = 2 * 1024 * 1024
#: Longest error message that is cached (longer ones are parsed every time).
MAX_CACHED_ERROR_MESSAGE_CHARS: Final = 4096
#: Metric attribute sets of (endpoint, outcome, credential): the same few repeat call after call.
MAX_METRIC_ATTRIBUTE_SETS: Final = 4096
MAX_METRIC_ATTRIBUTE_BYTES: Final = 4 * 1024 * 1024

#: Header names judged for whether they say credential (``X-Gateway-Key`` yes, ``Content-Type`` no).
MAX_CREDENTIAL_NAMES: Final = 1024
#: Header-name sequences (requests, responses) whose wanted and credential-named positions are memoised.
MAX_HEADER_PLANS: Final = 256
MAX_HEADER_PLAN_BYTES: Final = 1024 * 1024
#: Query strings whose credential parameters (``?key=``, ``?token=``) were read; the longest read.
MAX_QUERIES: Final = 256
MAX_QUERY_BYTES: Final = 1024 * 1024
MAX_QUERY_CHARS: Final = 8192

# --- caps on metric attribute values (distinct values; later ones get the overflow value) ---------
#: Known-endpoint templates on metrics (scope-map endpoints x distinct base paths).
MAX_KNOWN_TEMPLATES: Final = 2048
