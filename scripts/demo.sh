#!/usr/bin/env bash
# The main job: replay the seed incident against the fake OpenAI server, instrumented, and diagnose it.
# Creates .venv on first use. Extra arguments go to `otel-openai-scopes demo` (e.g. --time-scale 2).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/otel-openai-scopes ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[cli]'
fi
exec .venv/bin/otel-openai-scopes demo "$@"
