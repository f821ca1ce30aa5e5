#!/usr/bin/env bash
# The shipped pipelines on a real Collector, Jaeger v2 and Prometheus, on this machine, without Docker.
#
#   bash scripts/stack.sh build    compile the Collector (collector-config/builder-config.yaml, core/contrib v0.161.0)
#                                  and Jaeger v2 (cmd/jaeger v1.75.0 = Jaeger 2.12.0) from their Go modules into a
#                                  cache outside the repo, install Debian's prometheus if missing (root + apt-get);
#                                  a second run finds everything cached and only prints where it is
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
# Needs:  go (build only), python3 (port picking and health checks).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CFG=$ROOT/collector-config
OTELCOL_VERSION=0.161.0
JAEGER_VERSION=1.75.0
CACHE_ROOT=${OTEL_OPENAI_SCOPES_CACHE:-$HOME/.cache/otel-openai-scopes}
CACHE=$CACHE_ROOT/stack
HASH=$(sha256sum "$CFG/builder-config.yaml" | cut -c1-12)
OTELCOL_BIN=$CACHE/otelcol-$OTELCOL_VERSION-$HASH/otelcol-openai-scopes
JAEGER_BIN=$CACHE/jaeger-$JAEGER_VERSION/jaeger
BUILDER_BIN=$CACHE/tools/builder-v$OTELCOL_VERSION/builder
STATE=${OTEL_OPENAI_SCOPES_STATE:-${TMPDIR:-/tmp}/otel-openai-scopes-stack-$(id -u)}

die() { echo "stack.sh: $*" >&2; exit 1; }

# The official Go tarball installs into /usr/local/go, which a non-login shell may not have on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH=/usr/local/go/bin:$PATH; fi

prometheus_bin() {
  if [ -x /usr/bin/prometheus ]; then echo /usr/bin/prometheus; else command -v prometheus || true; fi
}

# ---------------------------------------------------------------------------------------------------- build

build_otelcol() {
  if [ -x "$OTELCOL_BIN" ]; then echo "== Collector: cached"; return; fi
  command -v go >/dev/null || die "go not found: the Collector is built from its Go modules (https://go.dev/dl/)"
  if [ ! -x "$BUILDER_BIN" ]; then
    echo "== installing the OpenTelemetry Collector Builder v$OTELCOL_VERSION"
    GOBIN=$(dirname "$BUILDER_BIN") go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
  fi
  local work
  work=$(mktemp -d "$CACHE/otelcol-build.XXXXXX")
  echo "== building the Collector from collector-config/builder-config.yaml (first time: a few minutes)"
  # Same manifest, output into the scratch dir (builder-config.yaml says output_path: ./_build).
  sed "s#^\(  output_path:\).*#\1 $work/dist#" "$CFG/builder-config.yaml" > "$work/builder-config.yaml"
  (cd "$work" && "$BUILDER_BIN" --config "$work/builder-config.yaml") > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; die "Collector build failed (full log: $work/build.log)"; }
  mkdir -p "$(dirname "$OTELCOL_BIN")"
  mv "$work/dist/otelcol-openai-scopes" "$OTELCOL_BIN.tmp" && mv "$OTELCOL_BIN.tmp" "$OTELCOL_BIN"
  rm -rf "$work"
}

build_jaeger() {
  if [ -x "$JAEGER_BIN" ]; then echo "== Jaeger: cached"; return; fi
  command -v go >/dev/null || die "go not found: Jaeger v2 is built from its Go module (https://go.dev/dl/)"
  echo "== building Jaeger v2 (github.com/jaegertracing/jaeger/cmd/jaeger v$JAEGER_VERSION; first time: several minutes)"
  local work
  work=$(mktemp -d "$CACHE/jaeger-build.XXXXXX")
  # `go install ...@v1.75.0` refuses the module's replace directives; a throwaway module that requires it works.
  (cd "$work" && go mod init jaegerbuild >/dev/null 2>&1 \
     && go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" \
     && go build -o "$work/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger) > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; die "Jaeger build failed (full log: $work/build.log)"; }
  mkdir -p "$(dirname "$JAEGER_BIN")"
  mv "$work/jaeger" "$JAEGER_BIN.tmp" && mv "$JAEGER_BIN.tmp" "$JAEGER_BIN"
  rm -rf "$work"
}

verify_jaeger_v2() {  # Jaeger v2 is a Collector build with the jaeger_storage and jaeger_query extensions
  local comps
  comps=$("$JAEGER_BIN" components 2>/dev/null) || die "$JAEGER_BIN components failed: not a Jaeger v2 binary"
  for ext in jaeger_storage jaeger_query; do
    grep -q "name: $ext\$" <<<"$comps" || die "$JAEGER_BIN lacks the $ext extension: not Jaeger v2"
  done
}

alertmanager_bin() {  # Debian names the server prometheus-alertmanager
  if [ -x /usr/bin/prometheus-alertmanager ]; then echo /usr/bin/prometheus-alertmanager; else command -v alertmanager || true; fi
}

apt_install() {  # $1 = Debian package; no service is started (policy-rc.d)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "$1 not found: install Debian's $1 package (apt-get install $1) and re-run"
  fi
  echo "== installing Debian's $1 (policy-rc.d forbids starting its service)"
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null; } \
    || { [ -n "$created" ] && rm -f "$policy"; die "apt-get install $1 failed"; }
  [ -n "$created" ] && rm -f "$policy"
  return 0
}

install_prometheus() {  # the server and promtool; Alertmanager and amtool (alerts/alertmanager.yaml, fleet tests)
  if [ -n "$(prometheus_bin)" ]; then echo "== Prometheus: $(prometheus_bin)"; else apt_install prometheus; fi
  [ -n "$(prometheus_bin)" ] || die "prometheus still not found after apt-get install"
  if [ -n "$(alertmanager_bin)" ]; then echo "== Alertmanager: $(alertmanager_bin)"; else apt_install prometheus-alertmanager; fi
  [ -n "$(alertmanager_bin)" ] || die "alertmanager still not found after apt-get install"
}

cmd_build() {
  mkdir -p "$CACHE"
  build_otelcol
  build_jaeger
  verify_jaeger_v2
  install_prometheus
  "$OTELCOL_BIN" --version >/dev/null || die "$OTELCOL_BIN does not run"
  echo "stack binaries (cache $CACHE):"
  echo "OTELCOL=$OTELCOL_BIN"
  echo "JAEGER=$JAEGER_BIN"
  echo "PROMETHEUS=$(prometheus_bin)"
  echo "ALERTMANAGER=$(alertmanager_bin)"
}

# ---------------------------------------------------------------------------------------------------- run

free_ports() {  # $1 = how many distinct free loopback ports, below the kernel's ephemeral range
  # (a bind(0) port comes from that range, which outgoing connections draw from too: one could take it
  # before the server binds it)
  python3 - "$1" <<'EOF'
import random, socket, sys
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
socks = []
while len(socks) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(10000, max(low - 1, 11000))))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_http() {  # $1 url, $2 seconds, $3 pid that must stay alive
  python3 - "$1" "$2" "$3" <<'EOF'
import os, sys, time, urllib.request
url, seconds, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)
    try:
        urllib.request.urlopen(url, timeout=2).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
EOF
}

alive() {  # pid file -> true if that pid still runs the binary recorded beside it
  local f=$1 pid exe
  [ -f "$f" ] || return 1
  pid=$(cat "$f"); exe=$(cat "$f.exe" 2>/dev/null || true)
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: the process must still be the binary we started
  [ -z "$exe" ] || [ "$(readlink "/proc/$pid/exe" 2>/dev/null || echo "$exe")" = "$exe" ]
}

start() {  # $1 name, $2.. argv; env already exported
  local name=$1; shift
  nohup "$@" > "$STATE/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/$name.pid"
  readlink -f "$1" > "$STATE/$name.pid.exe"
}

print_endpoints() { cat "$STATE/endpoints.env"; }

cmd_status() {
  local n=0 name
  for name in jaeger otelcol prometheus; do alive "$STATE/$name.pid" && n=$((n + 1)); done
  if [ "$n" = 3 ] && [ -f "$STATE/endpoints.env" ]; then print_endpoints; return 0; fi
  if [ "$n" = 0 ]; then echo "stack not running (state $STATE)" >&2; else echo "stack partly running ($n of 3; state $STATE): run down, then up" >&2; fi
  return 1
}

cmd_down() {
  local name pid stopped=0
  for name in prometheus otelcol jaeger; do
    local f=$STATE/$name.pid
    if alive "$f"; then
      pid=$(cat "$f")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      echo "stopped $name (pid $pid)"
      stopped=$((stopped + 1))
    fi
    rm -f "$f" "$f.exe"
  done
  rm -f "$STATE/endpoints.env"
  [ "$stopped" -gt 0 ] || echo "stack was not running"
}

cmd_up() {
  [ -x "$OTELCOL_BIN" ] && [ -x "$JAEGER_BIN" ] && [ -n "$(prometheus_bin)" ] \
    || die "binaries missing: run 'bash scripts/stack.sh build' first"
  mkdir -p "$STATE"
  if cmd_status >/dev/null 2>&1; then echo "stack already running (state $STATE):" >&2; print_endpoints; return 0; fi
  cmd_down >/dev/null
  local p
  read -r -a p <<<"$(free_ports 12)"
  local j_grpc=${p[0]} j_http=${p[1]} j_query=${p[2]} j_qgrpc=${p[3]} j_health=${p[4]}
  local c_grpc=${p[5]} c_http=${p[6]} c_health=${p[7]} c_tel=${p[8]} c_prom=${p[9]} prom=${p[10]}

  # Jaeger v2: in-memory storage, OTLP in, query API; all on loopback (collector-config/stack/jaeger-v2.yaml)
  export JAEGER_OTLP_GRPC_LISTEN=127.0.0.1:$j_grpc JAEGER_OTLP_HTTP_LISTEN=127.0.0.1:$j_http \
    JAEGER_QUERY_HTTP_LISTEN=127.0.0.1:$j_query JAEGER_QUERY_GRPC_LISTEN=127.0.0.1:$j_qgrpc \
    JAEGER_HEALTH_LISTEN=127.0.0.1:$j_health
  start jaeger "$JAEGER_BIN" --config "$CFG/stack/jaeger-v2.yaml"
  wait_http "http://127.0.0.1:$j_health/status" 60 "$(cat "$STATE/jaeger.pid")" \
    || { tail -20 "$STATE/jaeger.log" >&2; cmd_down >/dev/null; die "Jaeger did not start (log $STATE/jaeger.log)"; }

  # The shipped pipeline: base.yaml + jaeger.yaml, listeners moved to loopback by stack/loopback.yaml
  export JAEGER_OTLP_ENDPOINT=127.0.0.1:$j_grpc PROMETHEUS_EXPORTER_ENDPOINT=127.0.0.1:$c_prom \
    OTELCOL_OTLP_GRPC_LISTEN=127.0.0.1:$c_grpc OTELCOL_OTLP_HTTP_LISTEN=127.0.0.1:$c_http \
    OTELCOL_HEALTH_LISTEN=127.0.0.1:$c_health OTELCOL_TELEMETRY_PORT=$c_tel GOMEMLIMIT=${GOMEMLIMIT:-400MiB}
  start otelcol "$OTELCOL_BIN" --config="$CFG/base.yaml" --config="$CFG/jaeger.yaml" --config="$CFG/stack/loopback.yaml"
  wait_http "http://127.0.0.1:$c_health/" 60 "$(cat "$STATE/otelcol.pid")" \
    || { tail -20 "$STATE/otelcol.log" >&2; cmd_down >/dev/null; die "Collector did not start (log $STATE/otelcol.log)"; }

  # Prometheus: scrape the Collector's prometheus exporter every 10 s (honor_labels: job/instance from the
  # resource), load the shipped rules (their group intervals, 10 s for the verdicts and 1m for the rest, override
  # evaluation_interval); runbook links point at this checkout's RUNBOOK.md.
  cat > "$STATE/prometheus.yml" <<EOF
# written by scripts/stack.sh up
global:
  scrape_interval: 10s
  evaluation_interval: 10s
  external_labels:
    openai_scopes_runbook_url: file://$CFG/alerts/RUNBOOK.md
rule_files:
  - $CFG/alerts/prometheus-rules.yaml
scrape_configs:
  - job_name: otelcol-exporter
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$c_prom"]
  - job_name: otelcol-internal
    static_configs:
      - targets: ["127.0.0.1:$c_tel"]
EOF
  start prometheus "$(prometheus_bin)" --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/prometheus-data" \
    --web.listen-address=127.0.0.1:$prom --storage.tsdb.retention.time=2d
  wait_http "http://127.0.0.1:$prom/-/ready" 60 "$(cat "$STATE/prometheus.pid")" \
    || { tail -20 "$STATE/prometheus.log" >&2; cmd_down >/dev/null; die "Prometheus did not start (log $STATE/prometheus.log)"; }

  cat > "$STATE/endpoints.env" <<EOF
OTLP_GRPC_ENDPOINT=http://127.0.0.1:$c_grpc
OTLP_HTTP_ENDPOINT=http://127.0.0.1:$c_http
JAEGER_URL=http://127.0.0.1:$j_query
PROMETHEUS_URL=http://127.0.0.1:$prom
EOF
  print_endpoints
  cat >&2 <<EOF
(logs and pids in $STATE; stop with: bash scripts/stack.sh down)
Point an app at it (plaintext gRPC: the http:// scheme tells the OTLP exporter not to use TLS):
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$c_grpc OTEL_EXPORTER_OTLP_PROTOCOL=grpc \\
         OTEL_METRIC_EXPORT_INTERVAL=10000 OTEL_SERVICE_NAME=my-app
  opentelemetry-instrument --traces_exporter otlp --metrics_exporter otlp python app.py
EOF
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  path)
    case "${2:-}" in
      otelcol) echo "$OTELCOL_BIN" ;;
      jaeger) echo "$JAEGER_BIN" ;;
      prometheus) prometheus_bin ;;
      alertmanager) alertmanager_bin ;;
      *) die "usage: stack.sh path otelcol|jaeger|prometheus|alertmanager" ;;
    esac ;;
  components)
    [ -x "$OTELCOL_BIN" ] || die "run 'bash scripts/stack.sh build' first"
    echo "# Components of the otelcol-openai-scopes v$OTELCOL_VERSION distribution (collector-config/builder-config.yaml), as printed by"
    echo "# \`otelcol-openai-scopes components\` (providers and buildinfo omitted). Regenerate after editing builder-config.yaml:"
    echo "#   bash scripts/stack.sh components > tests/data/otelcol-openai-scopes-v$OTELCOL_VERSION-components.yaml"
    echo "# tests/test_stack_validate.py checks that the built binary still prints exactly these components."
    py=python3; [ -x "$ROOT/.venv/bin/python" ] && py=$ROOT/.venv/bin/python  # needs PyYAML
    "$OTELCOL_BIN" components 2>/dev/null | "$py" -c '
import sys, yaml
d = yaml.safe_load(sys.stdin); d.pop("buildinfo", None); d.pop("providers", None)
print(yaml.safe_dump(d, sort_keys=False, width=200), end="")' ;;
  *) echo "usage: bash scripts/stack.sh build|up|down|status|path <name>|components" >&2; exit 2 ;;
esac
