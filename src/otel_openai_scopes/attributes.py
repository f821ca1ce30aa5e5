"""The telemetry contract: every span, event, metric and attribute name this package emits.

Everything else (the instrumentation, the diagnosis, the CLI, the collector configs, the alert rules, the
tests and the README) takes its names from here, so a rename happens in one place. Standard names come
from the OpenTelemetry semantic-conventions package; ``openai.*`` names are this package's own.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_PROVIDER_NAME
from opentelemetry.semconv._incubating.attributes.url_attributes import URL_TEMPLATE
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT

from . import verdicts

# --- standard (semantic conventions) -------------------------------------------------------------
HTTP_METHOD: Final = HTTP_REQUEST_METHOD
HTTP_STATUS: Final = HTTP_RESPONSE_STATUS_CODE
TEMPLATE: Final = URL_TEMPLATE
HOST: Final = SERVER_ADDRESS
PORT: Final = SERVER_PORT
ERROR: Final = ERROR_TYPE
PROVIDER: Final = GEN_AI_PROVIDER_NAME

PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE: Final = "azure.ai.openai"

# --- endpoint and scopes -------------------------------------------------------------------------
OPERATION: Final = "openai.operation"
SCOPE_REQUIRED: Final = "openai.scope.required"
SCOPE_MISSING: Final = "openai.scope.missing"
# Scopes the credential's own claims grant (tokens that list them: ``scp``/``scope``), in scope grammar, bounded.
SCOPE_GRANTED: Final = "openai.scope.granted"
SCOPE_ERROR: Final = "openai.scope_error"
ERROR_CODE: Final = "openai.error.code"

# --- credential (never the key itself) -----------------------------------------------------------
KEY_FINGERPRINT: Final = "openai.key.fingerprint"
KEY_KIND: Final = "openai.key.kind"
KEY_HINT: Final = "openai.key.hint"
ORGANIZATION: Final = "openai.organization"
PROJECT: Final = "openai.project"
RESPONSE_ORGANIZATION: Final = "openai.response.organization"
RESPONSE_PROJECT: Final = "openai.response.project"
REQUEST_ID: Final = "openai.request_id"
ATTEMPTS: Final = "openai.attempts"

# --- client identity -----------------------------------------------------------------------------
CLIENT_ID: Final = "openai.client.id"
CLIENT_PARENT_ID: Final = "openai.client.parent_id"
CLIENT_ORIGIN: Final = "openai.client.origin"
CLIENT_ASYNC: Final = "openai.client.async"
CLIENT_MUTATED: Final = "openai.client.mutated"
# For a copy()/with_options() client: which of MUTABLE_FIELDS it was given different from its parent at copy time.
CLIENT_COPY_CHANGED: Final = "openai.client.copy_changed"
SDK_VERSION: Final = "openai.sdk.version"

# Values of CLIENT_MUTATED.
MUTABLE_FIELDS: Final = ("api_key", "organization", "project", "base_url")

# --- diagnosis (issue: "the key lost the scope" vs "this client is broken") ---------------------
DIAGNOSIS: Final = "openai.scope_error.diagnosis"
DIAGNOSIS_LAST_SUCCESS_TIME: Final = "openai.scope_error.last_success.time"
DIAGNOSIS_LAST_SUCCESS_CLIENT: Final = "openai.scope_error.last_success.client_id"
DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT: Final = "openai.scope_error.last_success.same_client"
# context_mismatch: the organization and project (as sent, masked) with which the same key passed.
DIAGNOSIS_LAST_SUCCESS_ORGANIZATION: Final = "openai.scope_error.last_success.organization"
DIAGNOSIS_LAST_SUCCESS_PROJECT: Final = "openai.scope_error.last_success.project"
DIAGNOSIS_FAILING_CLIENTS: Final = "openai.scope_error.failing_clients"
DIAGNOSIS_FAILING_KEYS: Final = "openai.scope_error.failing_keys"
DIAGNOSIS_PREVIOUS: Final = "openai.scope_error.previous_diagnosis"

# Values of DIAGNOSIS: defined in the verdict vocabulary (:mod:`.verdicts`); these aliases are for older callers.
DIAGNOSIS_CLIENT_MUTATED: Final = verdicts.CLIENT_MUTATED
DIAGNOSIS_SCOPE_FLAPPING: Final = verdicts.SCOPE_FLAPPING
DIAGNOSIS_NEVER_GRANTED: Final = verdicts.NEVER_GRANTED
DIAGNOSIS_UNKNOWN: Final = verdicts.UNKNOWN
DIAGNOSES: Final = verdicts.ALL

# --- span events ---------------------------------------------------------------------------------
EVENT_ATTEMPT: Final = "openai.attempt"
EVENT_ATTEMPT_RETRY: Final = "openai.attempt.retry"  # 0 for the first attempt
EVENT_DIAGNOSIS_CHANGED: Final = "openai.scope_error.diagnosis_changed"

# --- metrics -------------------------------------------------------------------------------------
METRIC_REQUESTS: Final = "openai.client.requests"
METRIC_REQUESTS_UNIT: Final = "{request}"
METRIC_SCOPE_ERRORS: Final = "openai.client.scope_errors"
METRIC_SCOPE_ERRORS_UNIT: Final = "{error}"
METRIC_DURATION: Final = "openai.client.request.duration"
METRIC_DURATION_UNIT: Final = "s"
# Made by the Collector (collector-config/, signal_to_metrics) from scope-error spans, one per span; a name of
# its own so it never collides with the SDK's per-scope counter above.
METRIC_SCOPE_ERROR_SPANS: Final = METRIC_SCOPE_ERRORS + ".spans"
# Metric attribute holding one missing scope (one increment of METRIC_SCOPE_ERRORS per scope).
SCOPE: Final = "openai.scope"

# Low-cardinality attributes allowed on metrics. Never request ids or client ids (those live on spans).
# KEY_FINGERPRINT (and KEY_HINT with it) are capped by max_metric_keys, (ORGANIZATION, PROJECT) pairs by
# max_metric_projects, TEMPLATE of endpoints outside the scope map by max_metric_templates.
METRIC_ATTRIBUTES: Final = (
    HTTP_METHOD,
    TEMPLATE,
    HOST,
    HTTP_STATUS,
    ERROR,
    OPERATION,
    KEY_FINGERPRINT,
    KEY_HINT,
    ORGANIZATION,
    PROJECT,
)
SCOPE_ERROR_METRIC_ATTRIBUTES: Final = (*METRIC_ATTRIBUTES, SCOPE, DIAGNOSIS)

# Value of KEY_FINGERPRINT (and KEY_HINT) on metrics once the bound of distinct keys is reached.
FINGERPRINT_OVERFLOW: Final = "_other"
# Value of KEY_FINGERPRINT on metrics of a call that sent no credential.
NO_FINGERPRINT: Final = "none"
# Value of ORGANIZATION and PROJECT on metrics once the bound of distinct (organization, project) pairs is reached.
CONTEXT_OVERFLOW: Final = "_other"
# Value of TEMPLATE on metrics once the bound of distinct templates of unknown endpoints is reached.
TEMPLATE_OVERFLOW: Final = "_other"

# Every span attribute this package may set, for docs, collector-config and leak tests.
SPAN_ATTRIBUTES: Final = (
    HTTP_METHOD,
    TEMPLATE,
    HOST,
    PORT,
    HTTP_STATUS,
    ERROR,
    PROVIDER,
    OPERATION,
    SCOPE_REQUIRED,
    SCOPE_MISSING,
    SCOPE_GRANTED,
    SCOPE_ERROR,
    ERROR_CODE,
    KEY_FINGERPRINT,
    KEY_KIND,
    KEY_HINT,
    ORGANIZATION,
    PROJECT,
    RESPONSE_ORGANIZATION,
    RESPONSE_PROJECT,
    REQUEST_ID,
    ATTEMPTS,
    CLIENT_ID,
    CLIENT_PARENT_ID,
    CLIENT_ORIGIN,
    CLIENT_ASYNC,
    CLIENT_MUTATED,
    CLIENT_COPY_CHANGED,
    SDK_VERSION,
    DIAGNOSIS,
    DIAGNOSIS_LAST_SUCCESS_TIME,
    DIAGNOSIS_LAST_SUCCESS_CLIENT,
    DIAGNOSIS_LAST_SUCCESS_SAME_CLIENT,
    DIAGNOSIS_LAST_SUCCESS_ORGANIZATION,
    DIAGNOSIS_LAST_SUCCESS_PROJECT,
    DIAGNOSIS_FAILING_CLIENTS,
    DIAGNOSIS_FAILING_KEYS,
)

# Key kinds (values of KEY_KIND).
# ``user_token``: an OAuth access token of a signed-in user/app (its claims list scopes and a client id);
# ``workload_identity``: a token whose claims tell a workload-identity exchange; ``token``: any other JWT.
KEY_KINDS: Final = ("project", "user", "service_account", "admin", "workload_identity", "user_token", "token",
                    "none", "other")
