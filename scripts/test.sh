#!/usr/bin/env bash
# The test suite at both ends of what we support, each in its own virtual environment:
#   .venv      newest Python we claim (3.13) with the newest openai (3.x, httpx2)
#   .venv-old  oldest Python we claim (3.9) with openai 1.35.7, the release the affected users ran
#              (needs httpx<0.28, pinned here only)
# Before the tests: installs Debian's prometheus (promtool and the server) and chromium when missing, builds the
# Collector and Jaeger into the cache outside the repo (scripts/stack.sh build; instant once built), and runs
# ruff and mypy --strict on src/. Starts no service itself and stops nothing it did not start.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet() {  # run a command, hide this machine's pip-config noise, keep its exit status
  "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
}

pick_python() {  # $1 = minor version (3.13): an interpreter of that version, else python3 (with a warning)
  local want=$1 candidate
  # pyenv's own install first: its shims on PATH answer for every version but run only the selected ones
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}/versions/$want".*/bin/python "python$want"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c pass >/dev/null 2>&1; then
      command -v "$candidate"; return
    fi
  done
  if [ -n "${CI:-}" ]; then
    echo "Python $want not found, but CI is set: the supported range must be tested at both ends" >&2
    exit 1
  fi
  echo "== Python $want not found: using python3 instead" >&2
  command -v python3
}

install_debian_packages() {  # the packages the tests need that this machine lacks
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "== cannot install ${missing[*]} (not root or no apt-get): the tests that need them skip (they fail under CI=true)"
    return
  fi
  echo "== installing ${missing[*]} (Debian)"
  # A policy-rc.d that forbids starting services, so the prometheus package starts no server: then there is
  # nothing to stop afterwards, and a user's own Prometheus is never touched.
  local policy=/usr/sbin/policy-rc.d created=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  apt-get update -qq >/dev/null
  local pkg
  for pkg in "${missing[@]}"; do
    case $pkg in
      chromium) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ;;  # with its fonts
      *) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null ;;
    esac
  done
  if [ -n "$created" ]; then rm -f "$policy"; fi
}

setup_venv() {  # $1 = venv dir, $2 = interpreter, rest = extra pip requirements
  local dir=$1 py=$2; shift 2
  local want have
  want=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ -x "$dir/bin/python" ]; then
    have=$("$dir/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
    if [ "$have" != "$want" ]; then echo "   $dir has Python $have, want $want: recreating"; rm -rf "$dir"; fi
  fi
  if [ ! -x "$dir/bin/python" ]; then "$py" -m venv "$dir"; fi
  quiet "$dir/bin/pip" install -q --upgrade pip
  quiet "$dir/bin/pip" install -q -e '.[test]' "$@"
  "$dir/bin/python" -c 'import sys, openai; print("   Python %d.%d.%d," % sys.version_info[:3], "openai", openai.__version__)'
}

install_debian_packages

echo "== Collector and Jaeger (scripts/stack.sh build)"
bash scripts/stack.sh build

echo "== newest openai (.venv)"
setup_venv .venv "$(pick_python 3.13)" --upgrade openai
echo "== openai 1.35.7 (.venv-old)"
setup_venv .venv-old "$(pick_python 3.9)" 'openai==1.35.7' 'httpx<0.28'

status=0
echo "== ruff and mypy --strict on src/"
.venv/bin/python -m ruff check src || status=$?
.venv/bin/python -m mypy --strict src || status=$?
echo "== tests, newest openai"
.venv/bin/python -m pytest -q "$@" || status=$?
echo "== tests, openai 1.35.7"
.venv-old/bin/python -m pytest -q "$@" || status=$?
exit $status
