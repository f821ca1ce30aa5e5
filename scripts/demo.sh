#!/usr/bin/env bash
# The main job: replay the seed incident against the fake OpenAI server, instrumented, and diagnose it.
# Creates .venv on first use. Extra arguments go to `otel-openai-scopes demo` (e.g. --time-scale 2).
#
#   bash scripts/demo.sh --stack [demo args]   send the telemetry through the real Collector (base.yaml +
#       jaeger.yaml) to Jaeger v2 and Prometheus started by scripts/stack.sh (built/started if needed),
#       then print the Jaeger search and Prometheus alert URLs, wait for the verdict alerts of the run and print how
#       long after the first scope error each fired (measured; ALERT_WAIT=seconds, 0 skips). Stop the stack with:
#       bash scripts/stack.sh down
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
OUT=demo-output/telemetry.jsonl   # the demo's --out (the last one given wins, as in the demo)
prev=""
for arg in "$@"; do
  case $arg in --out=*) OUT=${arg#--out=} ;; esac
  [ "$prev" = "--out" ] && OUT=$arg
  prev=$arg
done
echo "$endpoints"
OTEL_EXPORTER_OTLP_ENDPOINT=$OTLP_GRPC_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_SERVICE_NAME=$SERVICE \
  .venv/bin/otel-openai-scopes demo "$@"
TAGS=%7B%22openai.scope_error%22%3A%22true%22%7D   # {"openai.scope_error":"true"}
echo
echo "Jaeger search (service $SERVICE, tag openai.scope_error=true), the query API the UI uses:"
echo "  $JAEGER_URL/api/traces?service=$SERVICE&tags=$TAGS&limit=1000"
echo "  UI: $JAEGER_URL/search?service=$SERVICE&tags=$TAGS (a Jaeger built from source, as here, shows a placeholder page)"
echo "Prometheus alerts (queries: collector-config/alerts/RUNBOOK.md):"
echo "  $PROMETHEUS_URL/alerts"
echo "  API: $PROMETHEUS_URL/api/v1/alerts"
# Measure, do not promise: wait (at most ALERT_WAIT seconds) for the verdict alerts of this run and print how long
# after the first matching scope error each one fired (Prometheus' activeAt; the verdict alerts have no "for").
echo "Waiting up to ${ALERT_WAIT:-120}s for the verdict alerts of this run (set ALERT_WAIT=0 to skip):"
.venv/bin/python - "$PROMETHEUS_URL" "$OUT" "$SERVICE" "${ALERT_WAIT:-120}" <<'PYEOF'
import json, re, sys, time, urllib.request
from datetime import datetime, timezone

prom, out, service, wait = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
first = {}  # alert -> (first error time, key fingerprint)
try:
    lines = open(out, encoding="utf-8")
except OSError:
    print(f"  (no telemetry file {out}: nothing to measure)"); sys.exit(0)
for line in lines:
    try:
        doc = json.loads(line)
    except ValueError:
        continue
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                a = {x["key"]: next(iter(x["value"].values()), None) for x in s.get("attributes", [])}
                if not a.get("openai.scope_error"):
                    continue
                t = int(s["endTimeUnixNano"]) / 1e9
                fp = a.get("openai.key.fingerprint")
                for alert, hit in (("OpenAIScopeErrorClientMutated", a.get("openai.scope_error.diagnosis") == "client_mutated"),
                                   ("OpenAIScopeErrorPlatformSide", True)):
                    if hit and (alert not in first or t < first[alert][0]) and (alert != "OpenAIScopeErrorPlatformSide" or a.get("openai.scope_error.diagnosis") == "scope_flapping"):
                        first[alert] = (t, fp)
if not first:
    print("  no scope error in this run"); sys.exit(0)
deadline = time.time() + wait
done = {}
while True:
    try:
        alerts = json.load(urllib.request.urlopen(prom + "/api/v1/alerts", timeout=5))["data"]["alerts"]
    except Exception:
        alerts = []
    for al in alerts:
        name, labels = al["labels"].get("alertname"), al["labels"]
        if name in first and name not in done and al["state"] == "firing" and labels.get("job") == service \
                and labels.get("openai_key_fingerprint") == first[name][1]:
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", al["activeAt"])
            active = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() \
                + float("0." + (m[2] or "0"))
            done[name] = active - first[name][0]
    if len(done) == len(first) or time.time() > deadline:
        break
    time.sleep(2)
for name in first:
    if name in done:
        print(f"  {name}: firing {done[name]:.0f} s after the first matching scope error (measured)")
    else:
        print(f"  {name}: not firing within {wait:.0f} s of the end of the run (see {prom}/alerts)")
print("  (the demo exports metrics every 1 s; an app at OTEL_METRIC_EXPORT_INTERVAL=10000 adds up to 9 s more)")
PYEOF
echo "Stop the stack: bash scripts/stack.sh down"
