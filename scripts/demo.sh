#!/usr/bin/env bash
# The main job: replay the seed incident against the fake OpenAI server, instrumented, and diagnose it.
# Creates .venv on first use. Extra arguments go to `otel-openai-scopes demo` (e.g. --time-scale 2).
#
#   bash scripts/demo.sh --stack [demo args]   send the telemetry through the real Collector (base.yaml +
#       jaeger.yaml) to Jaeger v2 and Prometheus started by scripts/stack.sh (built/started if needed),
#       then print the Jaeger search and Prometheus alert URLs. Stop the stack with: bash scripts/stack.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# (re)install when the command or a dependency added since the venv was made is missing
if [ ! -x .venv/bin/otel-openai-scopes ] || ! .venv/bin/python -c 'import msgspec, rich, typer, yaml' 2>/dev/null; then
  .venv/bin/pip install -q -e '.[cli]'
fi
if [ "${1:-}" != "--stack" ]; then
  exec .venv/bin/otel-openai-scopes demo "$@"
fi
shift
if ! endpoints=$(bash scripts/stack.sh status 2>/dev/null); then
  if [ ! -x "$(bash scripts/stack.sh path otelcol)" ] || [ ! -x "$(bash scripts/stack.sh path jaeger)" ]; then
    bash scripts/stack.sh build
  fi
  endpoints=$(bash scripts/stack.sh up)
fi
OTLP_GRPC_ENDPOINT=$(sed -n 's/^OTLP_GRPC_ENDPOINT=//p' <<<"$endpoints")
JAEGER_URL=$(sed -n 's/^JAEGER_URL=//p' <<<"$endpoints")
PROMETHEUS_URL=$(sed -n 's/^PROMETHEUS_URL=//p' <<<"$endpoints")
SERVICE=${OTEL_SERVICE_NAME:-openai-scopes-demo}
echo "$endpoints"
OTEL_EXPORTER_OTLP_ENDPOINT=http://$OTLP_GRPC_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_SERVICE_NAME=$SERVICE \
  .venv/bin/otel-openai-scopes demo "$@"
TAGS=%7B%22openai.scope_error%22%3A%22true%22%7D   # {"openai.scope_error":"true"}
echo
echo "Jaeger search (service $SERVICE, tag openai.scope_error=true), the query API the UI uses:"
echo "  $JAEGER_URL/api/traces?service=$SERVICE&tags=$TAGS&limit=1000"
echo "  UI: $JAEGER_URL/search?service=$SERVICE&tags=$TAGS (a Jaeger built from source, as here, shows a placeholder page)"
echo "Prometheus alerts (rule groups evaluate every 1m: client-mutated and platform-side within about a minute,"
echo "the spike after its 2m 'for', for about 3 minutes; queries: collector-config/alerts/RUNBOOK.md):"
echo "  $PROMETHEUS_URL/alerts"
echo "  API: $PROMETHEUS_URL/api/v1/alerts"
echo "Stop the stack: bash scripts/stack.sh down"
