"""Scale benchmark for ``otel-openai-scopes report`` (not a test): throughput and peak memory on a fleet's day.

Writes (once, cached by size) OTLP JSON lines shaped exactly like this instrumentation's spans, from 20
processes with 4 keys and 3 clients each, 512 spans per line like the SDK's batch processor: steady traffic,
a platform window in which one key intermittently loses ``api.threads.read`` everywhere, a restricted key
failing everywhere, and one pod whose shared client is mutated to the restricted key. Then runs the real
command in a subprocess (``report --json`` and optionally ``--html``) and reports wall time, spans per
second and the child's peak RSS (``os.wait4``).

    .venv/bin/python benchmarks/report_scale.py                    # 1,000,000 spans (~2 GB), cached
    .venv/bin/python benchmarks/report_scale.py --spans 100000     # quicker
    .venv/bin/python benchmarks/report_scale.py --distinct 1000,25000,100000   # hostile: one key per span

Targets (issue 10): >= 50,000 spans/s and peak RSS < 300 MB for 1,000,000 spans. Issue 16: peak RSS flat in the
number of distinct keys, scopes and clients a hostile file holds (``--distinct``: every span a scope error with its
own fingerprint; ``--vary keys,scopes,clients,templates`` chooses what else differs per span).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "otel-openai-scopes"

ENDPOINTS = [  # (method, template, operation, required scope)
    ("GET", "/v1/threads/{thread_id}/runs", "beta.threads.runs.list", "api.threads.read"),
    ("POST", "/v1/threads/{thread_id}/messages", "beta.threads.messages.create", "api.threads.write"),
    ("POST", "/v1/chat/completions", "chat.completions.create", "model.request"),
    ("GET", "/v1/threads/{thread_id}", "beta.threads.retrieve", "api.threads.read"),
]
KEYS = [("a1b2c3d4e5f60001", "sk-proj-...Ab12"), ("a1b2c3d4e5f60002", "sk-proj-...Cd34"),
        ("a1b2c3d4e5f60003", "sk-svcacct-...Ef56"), ("a1b2c3d4e5f60004", "sk-proj-...Gh78")]
RESTRICTED = 1  # key index that lacks the threads scopes everywhere


def _s(key: str, value: str) -> str:
    return f'{{"key":"{key}","value":{{"stringValue":"{value}"}}}}'


def _i(key: str, value: int) -> str:
    return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'


def _b(key: str, value: bool) -> str:
    return f'{{"key":"{key}","value":{{"boolValue":{"true" if value else "false"}}}}}'


def _a(key: str, values: list) -> str:
    items = ",".join(f'{{"stringValue":"{v}"}}' for v in values)
    return f'{{"key":"{key}","value":{{"arrayValue":{{"values":[{items}]}}}}}}'


def generate(path: Path, spans: int, processes: int = 20, seed: int = 10) -> None:
    rnd = random.Random(seed)
    t0 = 1_800_000_000 * 10**9
    duration = 24 * 3600 * 10**9
    step = duration // spans
    flap = (t0 + duration * 40 // 100, t0 + duration * 42 // 100)
    mutated_from = t0 + duration * 70 // 100
    per_line = 512
    resources = [
        '{"resource":{"attributes":[' + ",".join([
            _s("telemetry.sdk.language", "python"), _s("telemetry.sdk.name", "opentelemetry"),
            _s("telemetry.sdk.version", "1.45.2"), _s("service.name", "assistants-api"),
            _s("service.instance.id", f"pod-{p:02d}-{rnd.getrandbits(48):012x}"), _i("process.pid", 1000 + p),
            _s("host.name", f"node-{p % 5}")]) + ']},"scopeSpans":[{"scope":{"name":"otel_openai_scopes.instrumentor",'
        '"version":"0.1.0"},"spans":['
        for p in range(processes)]
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as out:
        n = 0
        while n < spans:
            p = (n // per_line) % processes
            items = []
            for _ in range(min(per_line, spans - n)):
                t = t0 + n * step + rnd.randrange(step)
                n += 1
                method, template, operation, scope = ENDPOINTS[rnd.randrange(len(ENDPOINTS))]
                k = rnd.randrange(len(KEYS))
                client = rnd.randrange(3)
                mutated = p == 7 and client == 0 and t >= mutated_from
                if mutated:
                    k = RESTRICTED
                fp, hint = KEYS[k]
                error = None
                if scope.startswith("api.threads"):
                    if k == RESTRICTED:
                        error = "client_mutated" if mutated else "never_granted"
                    elif k == 0 and flap[0] <= t < flap[1] and scope == "api.threads.read" and rnd.random() < 0.5:
                        error = "scope_flapping"
                status = 401 if error else 200
                attrs = [_s("server.address", "api.openai.com"), _i("server.port", 443),
                         _s("gen_ai.provider.name", "openai"), _s("openai.client.id", f"{p}-{client}"),
                         _b("openai.client.async", True), _s("openai.sdk.version", "3.57.0"),
                         _s("openai.client.origin", f"/srv/app/workers/tenant_{client}.py:{40 + client}"),
                         _s("http.request.method", method), _s("url.template", template),
                         _s("openai.operation", operation), _a("openai.scope.required", [scope]),
                         _i("openai.attempts", 1), _s("openai.key.kind", "project"),
                         _s("openai.key.fingerprint", fp), _s("openai.key.hint", hint),
                         _s("openai.organization", "org-fleet000000000000000001"),
                         _s("openai.project", "proj_fleet0000000000000000001"), _i("http.response.status_code", status),
                         _s("openai.request_id", f"req_{rnd.getrandbits(128):032x}"),
                         _s("openai.response.organization", "org-fleet000000000000000001"),
                         _s("openai.response.project", "proj_fleet0000000000000000001")]
                if error:
                    attrs += [_s("error.type", "401"), _b("openai.scope_error", True),
                              _a("openai.scope.missing", [scope]), _s("openai.scope_error.diagnosis", error),
                              _i("openai.scope_error.failing_clients", 2), _i("openai.scope_error.failing_keys", 1)]
                    if mutated:
                        attrs.append(_a("openai.client.mutated", ["api_key"]))
                end = t + rnd.randrange(20_000_000, 900_000_000)
                status_code = '"code":2'
                items.append(
                    f'{{"traceId":"{rnd.getrandbits(128):032x}","spanId":"{rnd.getrandbits(64):016x}",'
                    f'"name":"{method} {template}","kind":3,"startTimeUnixNano":"{t}","endTimeUnixNano":"{end}",'
                    f'"attributes":[{",".join(attrs)}],"status":{{{status_code if error else ""}}},'
                    f'"flags":256}}')
            out.write('{"resourceSpans":[' + resources[p] + ",".join(items) + "]}]}]}\n")
    os.replace(tmp, path)


def generate_distinct(path: Path, spans: int, vary: set[str]) -> None:
    """``spans`` scope errors in one process, each with its own fingerprint (and, per ``vary``, its own missing
    scope, client id or url.template): what a hostile or broken producer can put in a file."""
    t0 = 1_800_000_000 * 10**9
    resource = ('{"resource":{"attributes":[' + _s("service.instance.id", "pod-hostile") + ']},"scopeSpans":[{"scope":'
                '{"name":"otel_openai_scopes.instrumentor"},"spans":[')
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as out:
        for first in range(0, spans, 512):
            items = []
            for n in range(first, min(spans, first + 512)):
                t = t0 + n * 1_000_000
                scope = f"api.hostile{n}.read" if "scopes" in vary else "api.threads.read"
                attrs = [_s("http.request.method", "GET"),
                         _s("url.template", f"/v1/hostile/{n}" if "templates" in vary else ENDPOINTS[0][1]),
                         _s("openai.key.fingerprint", f"{n:016x}" if "keys" in vary else "a1b2c3d4e5f60001"),
                         _s("openai.client.id", f"client-{n}" if "clients" in vary else "0-1"),
                         _s("openai.client.origin", "/srv/app/main.py:3"),
                         _i("http.response.status_code", 401), _b("openai.scope_error", True),
                         _a("openai.scope.missing", [scope]), _a("openai.scope.required", [scope]),
                         _s("openai.scope_error.diagnosis", "unknown"), _s("openai.request_id", f"req_{n:032x}")]
                items.append(f'{{"name":"GET x","kind":3,"startTimeUnixNano":"{t}","endTimeUnixNano":"{t + 1000}",'
                             f'"attributes":[{",".join(attrs)}]}}')
            out.write('{"resourceSpans":[' + resource + ",".join(items) + "]}]}]}\n")
    os.replace(tmp, path)


def distinct_runs(counts: list[int], vary: set[str]) -> None:
    """Peak RSS and --json size of ``report`` per number of distinct keys (and scopes, clients...)."""
    rows = []
    for n in counts:
        name = f"otel-openai-scopes-report-distinct-{'-'.join(sorted(vary))}-{n}.jsonl"
        path = Path(os.environ.get("TMPDIR", "/tmp")) / name
        if not path.exists():
            generate_distinct(path, n, vary)
        result = measure([str(CLI), "report", "--json", str(path)])
        if result["returncode"] not in (0, 1):
            sys.exit(f"report failed ({result['returncode']}): {result['stderr'][-2000:]}")
        doc = json.loads(result["stdout"])
        rows.append({"distinct": n, "vary": sorted(vary), "spans": doc["totals"]["spans"],
                     "windows": doc["totals"]["windows"], "keys": doc["totals"]["keys"],
                     "json_mb": round(len(result["stdout"]) / 1e6, 2), "wall_s": round(result["wall_s"], 2),
                     "peak_rss_mb": round(result["peak_rss_mb"], 1)})
        print(json.dumps(rows[-1]), flush=True)


def measure(args: list) -> dict:
    """Run ``args``; its wall time, CPU time and its own peak RSS (``wait4``: this child only, not the largest
    child so far as ``RUSAGE_CHILDREN`` would give)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {"returncode": proc.returncode, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout, "stderr": stderr}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, default=None, help="where to cache the generated file")
    ap.add_argument("--html", action="store_true", help="also write the HTML timeline in the measured run")
    ap.add_argument("--distinct", default="", help="hostile runs instead: comma-separated numbers of spans, each "
                    "with its own fingerprint (smallest first)")
    ap.add_argument("--vary", default="keys", help="with --distinct: what differs per span (keys,scopes,clients,"
                    "templates)")
    opts = ap.parse_args()
    if opts.distinct:
        distinct_runs(sorted(int(n) for n in opts.distinct.split(",")), set(opts.vary.split(",")))
        return
    path = opts.file or Path(os.environ.get("TMPDIR", "/tmp")) / f"otel-openai-scopes-report-scale-{opts.spans}.jsonl"
    if not path.exists():
        t = time.perf_counter()
        generate(path, opts.spans)
        print(f"generated {path} in {time.perf_counter() - t:.0f}s", flush=True)
    size = path.stat().st_size
    cmd = [str(CLI), "report", "--json", str(path)]
    if opts.html:
        cmd += ["--html", str(path.with_suffix(".html"))]
    result = measure(cmd)
    if result["returncode"] not in (0, 1):
        sys.exit(f"report failed ({result['returncode']}): {result['stderr'][-2000:]}")
    doc = json.loads(result["stdout"])
    spans = doc["totals"]["spans"]
    print(json.dumps({
        "command": " ".join(cmd),
        "spans": spans,
        "file_bytes": size,
        "wall_s": round(result["wall_s"], 2),
        "spans_per_s": round(spans / result["wall_s"]),
        "cpu_s": round(result["cpu_s"], 2),
        "spans_per_cpu_s": round(spans / result["cpu_s"]),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "mb_per_s": round(size / 1e6 / result["wall_s"], 1),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "windows": [(w["diagnosis"], w["hint"], w["scopes"], w["errors"], w["processes_failing"])
                    for w in doc["windows"]][:12],
        "targets_met": spans / result["wall_s"] >= 50_000 and result["peak_rss_mb"] < 300,
    }, indent=2))


if __name__ == "__main__":
    main()
