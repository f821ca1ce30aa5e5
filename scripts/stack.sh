#!/usr/bin/env bash
# The shipped pipelines on a real Collector, Jaeger v2 and Prometheus, on this machine, without Docker.
#
#   bash scripts/stack.sh build    compile the Collector (collector-config/builder-config.yaml, core/contrib v0.161.0)
#                                  and Jaeger v2 (cmd/jaeger v1.75.0 = Jaeger 2.12.0) from their Go modules into a
#                                  cache outside the repo, install Debian's prometheus and prometheus-alertmanager if
#                                  missing (root + apt-get); a second run finds everything cached and only prints where
#   bash scripts/stack.sh up       start the three on free 127.0.0.1 ports (base.yaml + jaeger.yaml + stack/loopback.yaml),
#                                  print OTLP_GRPC_ENDPOINT=, OTLP_HTTP_ENDPOINT=, JAEGER_URL=, PROMETHEUS_URL= (each a URL
#                                  with its scheme, usable as printed: OTEL_EXPORTER_OTLP_ENDPOINT=$OTLP_GRPC_ENDPOINT), and
#                                  on stderr the environment that points an app at it
#   bash scripts/stack.sh status   print the same lines while they run (exit 1 if not running)
#   bash scripts/stack.sh down     stop exactly the pids `up` recorded
#   bash scripts/stack.sh path otelcol|jaeger|prometheus|alertmanager    print one binary's path (after build)
#   bash scripts/stack.sh components                         the Collector's component list (tests/data/...)
#
# Cache:  ${OTEL_OPENAI_SCOPES_CACHE:-$HOME/.cache/otel-openai-scopes}/stack/
#           otelcol-<version>-<sha256 of builder-config.yaml, 12 hex>/otelcol-openai-scopes, jaeger-<version>/jaeger
# State:  ${OTEL_OPENAI_SCOPES_STATE:-${TMPDIR:-/tmp}/otel-openai-scopes-stack-$(id -u)}/  (configs, logs, pids, data)
# Needs:  python3 >= 3.9 (standard library only; `components` also PyYAML, from .venv), go (build only).
# The work is done by tests/support/stack/, the same code the stack tests start their servers with.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
py=python3
if [ "${1:-}" = components ] && [ -x "$ROOT/.venv/bin/python" ]; then py=$ROOT/.venv/bin/python; fi
command -v "$py" >/dev/null 2>&1 || { echo "stack.sh: python3 not found (the stack is driven from Python)" >&2; exit 1; }
cd "$ROOT"  # `-m` looks in the working directory first: ours, not a caller's own tests/ package
exec "$py" -m tests.support.stack "$@"
