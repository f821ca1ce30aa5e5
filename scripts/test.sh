#!/usr/bin/env bash
# The test suite, at both ends of the supported openai range, each in its own virtual environment:
#   .venv      newest openai (3.x, httpx2)
#   .venv-old  openai 1.35.7, the release the affected users ran (needs httpx<0.28, pinned here only)
# Installs promtool (Debian's prometheus package) for the alert-rule tests when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing promtool (Debian package prometheus)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # the package may start a server; the tests need only promtool
    (systemctl stop prometheus || service prometheus stop || pkill -x prometheus) >/dev/null 2>&1 || true
  else
    echo "== promtool not found and cannot install it: the promtool tests will skip (they fail under CI=true)"
  fi
fi

quiet() {  # run a command, hide this machine's pip-config noise, keep its exit status
  "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
}

setup_venv() {  # $1 = venv dir, rest = extra pip requirements
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then "$PY" -m venv "$dir"; fi
  quiet "$dir/bin/pip" install -q --upgrade pip
  quiet "$dir/bin/pip" install -q -e '.[test]' "$@"
  "$dir/bin/python" -c 'import openai, otel_openai_scopes; print("   openai", openai.__version__)'
}

echo "== newest openai (.venv)"
setup_venv .venv --upgrade openai
echo "== openai 1.35.7 (.venv-old)"
setup_venv .venv-old 'openai==1.35.7' 'httpx<0.28'

status=0
echo "== tests, newest openai"
.venv/bin/python -m pytest -q "$@" || status=$?
echo "== tests, openai 1.35.7"
.venv-old/bin/python -m pytest -q "$@" || status=$?
exit $status
