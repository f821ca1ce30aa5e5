#!/usr/bin/env bash
# The README's test command: every tier on both lanes (Python 3.13 + newest openai in .venv, Python 3.9 + openai
# 1.35.7 in .venv-old), after installing what the tests need. The sessions are in noxfile.py; this script only
# makes sure nox is there (in .nox/runner, with any Python >= 3.10 of this machine) and runs it.
#
#   bash scripts/test.sh                 prepare, lint, tests-3.13, tests-3.9 (extra arguments go to pytest)
#   bash scripts/test.sh --quick         the quick tier (unit and integration, not slow) on the newest lane
#   bash scripts/test.sh --venvs         (re)make .venv and .venv-old only
#   bash scripts/test.sh -s NAME ...     any nox arguments (`-l` lists the sessions)
# Starts no service itself and stops nothing it did not start.
set -euo pipefail
cd "$(dirname "$0")/.."
NOX_VERSION=2026.10.20
runner=.nox/runner

if ! "$runner/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('nox') != '$NOX_VERSION')" 2>/dev/null; then
  py=""
  for candidate in python3 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[0-9]*/bin/python; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then py=$candidate; break; fi
  done
  [ -n "$py" ] || { echo "test.sh: nox needs a Python >= 3.10 on this machine (python3 is older)" >&2; exit 1; }
  echo "== nox $NOX_VERSION into $runner ($("$py" --version))"
  rm -rf "$runner"
  "$py" -m venv "$runner"
  "$runner/bin/python" -m pip install -q "nox==$NOX_VERSION" 2>&1 | { grep -v '^WARNING: Location' || true; }
fi
nox=("$runner/bin/python" -m nox --non-interactive)
case "${1:-}" in
  --quick) shift; exec "${nox[@]}" -s quick-3.13 -- "$@" ;;
  --venvs) exec "${nox[@]}" -s venvs ;;
  -s|-l|--list|--session|-k|-t) exec "${nox[@]}" "$@" ;;
  *) exec "${nox[@]}" -- "$@" ;;
esac
