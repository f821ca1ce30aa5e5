"""Driver side of the benchmark: venvs, worker processes, callgrind control, wall-time rounds."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_worker.py"

# Packages pinned in the comparison venvs to the main venv's versions, so "bare" is the same program.
_SHARED = (
    "openai", "httpx2", "httpcore2", "h11", "anyio", "sniffio", "idna", "certifi", "jiter", "pydantic",
    "pydantic_core", "typing_extensions", "typing-inspection", "annotated-types", "distro", "tqdm", "wrapt",
    "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation", "opentelemetry-semantic-conventions",
    "packaging",
)


@dataclass
class Compare:
    """A third-party instrumentation measured in its own venv (they cannot share one: see README)."""

    name: str
    venv: str
    requirements: list[str]
    note: str = ""


COMPARES = [
    Compare(
        "openai-v2",
        ".venv-openai-v2",
        # 2.4b0 imports opentelemetry.util.genai.instruments, removed in util-genai 1.2b0, and the legacy
        # `httpx` package (not a dependency of openai 3.x, which uses httpx2; not declared by openai-v2).
        ["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai>=1.0b0,<1.2", "httpx"],
        "2.4b0 does not import as published next to openai 3.x: it needs the legacy `httpx` package "
        "(imports httpx.URL; openai 3.x depends on httpx2 only, openai-v2 does not declare httpx) and "
        "opentelemetry-util-genai<1.2 (imports util.genai.instruments, removed in 1.2b0; its own pin "
        "allows 1.3b0); both are installed in its venv so it can be measured. It wraps chat.completions "
        "and embeddings create only: runs_list_401 is not instrumented (overhead ~0)",
    ),
    Compare("genai-openai", ".venv-genai-openai", ["opentelemetry-instrumentation-genai-openai"],
            "1.3b0 wraps chat.completions, embeddings and responses only: runs_list_401 is not instrumented "
            "(overhead ~0); on chat_401 it records error.type but parses no body"),
]


def snapshot_source(workdir: Path) -> tuple[str, dict[str, Any]]:
    """Copy src/otel_openai_scopes now: every worker of the run imports this copy (``BENCH_SRC``), so
    edits made to src/ while the benchmark runs cannot mix versions between processes."""
    dest = workdir / "src"
    shutil.copytree(REPO / "src" / "otel_openai_scopes", dest / "otel_openai_scopes",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for f in sorted((dest / "otel_openai_scopes").rglob("*")):
        if f.is_file():
            digest.update(f.relative_to(dest).as_posix().encode() + b"\0" + f.read_bytes())
    info = source_revision()
    info["src_sha256"] = digest.hexdigest()[:16]
    return str(dest), info


def source_revision() -> dict[str, Any]:
    """The commit measured, and whether src/ had uncommitted changes (read-only git)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, cwd=str(REPO)).stdout.strip()
        except OSError:
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_dirty": bool(git("status", "--porcelain", "src"))}


def main_python() -> str:
    cand = REPO / ".venv" / "bin" / "python"
    return str(cand) if cand.exists() else sys.executable


def _pip_freeze(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True).stdout
    pins = {}
    for line in out.splitlines():
        if "==" in line and not line.startswith(("-e", "#")):
            name, _, ver = line.partition("==")
            pins[name.lower().replace("_", "-")] = ver.strip()
    return pins


def ensure_compare_venv(cmp: Compare, log: Callable[[str], None]) -> tuple[str | None, str]:
    """Create/refresh ``benchmarks/<venv>``; returns (python, "") or (None, reason)."""
    main_py = main_python()
    pins = _pip_freeze(main_py)
    shared = [f"{p}=={pins[p.lower().replace('_', '-')]}" for p in _SHARED if p.lower().replace("_", "-") in pins]
    reqs = shared + cmp.requirements
    stamp = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:16]
    venv = HERE / cmp.venv
    py = venv / "bin" / "python"
    stamp_file = venv / ".bench-stamp"
    if py.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return str(py), ""
    log(f"setting up {cmp.venv} ({cmp.name}) ...")
    if venv.exists():
        shutil.rmtree(venv)
    base = subprocess.run([main_py, "-c", "import sys; print(sys._base_executable)"], capture_output=True,
                          text=True).stdout.strip() or main_py
    r = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode:
        return None, f"venv creation failed: {r.stderr.strip()[-300:]}"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], capture_output=True, text=True)
    if r.returncode:
        err = " ".join(line for line in r.stderr.splitlines() if "is ignored" not in line)
        return None, f"pip install failed: {err.strip()[-400:]}"
    stamp_file.write_text(stamp + "\n")
    return str(py), ""


# ---------------------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    pass


_LIVE: set = set()
SNAPSHOT: dict[str, str] = {"path": ""}  # set by the driver: a copy of src/ that every worker imports


def kill_live_workers(*_: Any) -> None:
    """Kill the worker processes this driver started (by their own pids), e.g. on SIGTERM."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
    _LIVE.clear()


def install_signal_handlers() -> None:
    import signal

    def handler(signum, _frame):
        kill_live_workers()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Worker:
    """One ``_worker.py`` process, optionally under callgrind with counting off at start."""

    def __init__(self, python: str, variant: str, ablate: str = "", callgrind_out: str | None = None,
                 env: dict[str, str] | None = None, layout_seed: int = 0) -> None:
        # fixed-width arguments: the worker's own allocations must not depend on the variant's name
        cmd = [python, str(WORKER), "--variant", variant.ljust(40), "--ablate", ablate.ljust(120)]
        self.callgrind_out = callgrind_out
        self.dumps = 0
        if callgrind_out:
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={callgrind_out}",
                   *cmd]
        e = dict(os.environ)
        e.update({"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})
        for k in list(e):
            if k.startswith(("OTEL_", "OPENAI_")):
                del e[k]  # same configuration whatever the caller's shell says
        if layout_seed:
            e["BENCH_LAYOUT_SEED"] = str(layout_seed)
        if SNAPSHOT["path"]:
            e["BENCH_SRC"] = SNAPSHOT["path"]
        e.update(env or {})
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the worker; close() closes it)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, env=e, cwd=str(HERE))
        _LIVE.add(self.proc)
        line = self._readline()
        parts = line.split(" ", 2)
        if parts[0] == "na":
            self.close()
            raise WorkerError(line[3:])
        if parts[0] != "ready":
            self.close()
            raise WorkerError(f"unexpected start line {line!r}: {self.stderr_tail()}")
        self.pid = int(parts[1])
        self.info = json.loads(parts[2]) if len(parts) > 2 else {}

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker exited ({self.proc.poll()}): {self.stderr_tail()}")
        return line.rstrip("\n")

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read()[-800:].replace("\n", " | ")
        except Exception:  # noqa: BLE001
            return ""

    def command(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._readline()

    def warm(self, scenario: str, n: int) -> None:
        r = self.command(f"warm {scenario} {n}")
        if r != "ok":
            raise WorkerError(r[3:] if r.startswith("na ") else r)

    def run(self, scenario: str, n: int) -> int:
        r = self.command(f"run {scenario} {n}")
        if not r.startswith("done "):
            raise WorkerError(r)
        return int(r.split()[1])

    # -- callgrind ----------------------------------------------------------------------------------
    def _control(self, *args: str) -> None:
        r = subprocess.run(["callgrind_control", *args, str(self.pid)], capture_output=True, text=True)
        if r.returncode or "OK" not in r.stdout:
            raise WorkerError(f"callgrind_control {' '.join(args)}: {r.stdout.strip()} {r.stderr.strip()}")

    def counted_run(self, scenario: str, n: int, keep: str | None = None) -> int:
        """Instructions for ``run scenario n`` (+ the constant handshake): counting on, run, off, dump."""
        self._control("-i", "on")
        self.run(scenario, n)  # the worker only starts once counting is on: this line is sent after
        self._control("-i", "off")
        self._control("-d")
        self.dumps += 1
        path = Path(f"{self.callgrind_out}.{self.dumps}")
        total = read_total(path)
        if keep:
            shutil.move(str(path), keep)
        else:
            path.unlink(missing_ok=True)
        return total

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=120)
        except Exception:  # noqa: BLE001
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        _LIVE.discard(self.proc)
        if self.callgrind_out:
            for p in Path(self.callgrind_out).parent.glob(Path(self.callgrind_out).name + "*"):
                p.unlink(missing_ok=True)


def read_total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            value = int(line.split()[1])
            if line.startswith("totals:") or value:
                return value
    raise WorkerError(f"no totals in {path}")


# ---------------------------------------------------------------------------------------------------
@dataclass
class VariantSpec:
    name: str
    python: str | None  # None: not available
    baseline: str  # the bare variant of the same venv
    na: str = ""
    ablate: str = ""
    venv: str = ".venv"


@dataclass
class CallgrindResult:
    per_call: dict[str, list[float]] = field(default_factory=dict)  # scenario -> per-call counts, one per rep
    handshake: dict[str, int] = field(default_factory=dict)
    na: dict[str, str] = field(default_factory=dict)  # scenario -> reason
    info: dict[str, Any] = field(default_factory=dict)


def callgrind_variant(spec: VariantSpec, scenarios: list[str], calls: int, reps: int, warmup: int,
                      workdir: Path, keep_dir: Path | None = None, layout_seed: int = 0) -> CallgrindResult:
    """Counts per call of one process; ``layout_seed`` shifts its heap (see _worker.py, README caveats)."""
    res = CallgrindResult()
    out = str(workdir / f"cg.{spec.name}{('+' + spec.ablate) if spec.ablate else ''}.{'-'.join(scenarios)}"
                        f".{os.urandom(4).hex()}.out")  # unique: the same job may run twice at once
    try:
        w = Worker(spec.python, spec.name.split("@")[0], spec.ablate, callgrind_out=out, layout_seed=layout_seed)
    except WorkerError as exc:
        for s in scenarios:
            res.na[s] = str(exc)
        return res
    res.info = w.info
    try:
        for s in scenarios:
            try:
                w.warm(s, warmup)
                zero = w.counted_run(s, 0)
                res.handshake[s] = zero
                vals = []
                for r in range(reps):
                    keep = None
                    if keep_dir is not None and r == reps - 1:
                        keep = str(keep_dir / f"callgrind.{spec.name}{('+' + spec.ablate) if spec.ablate else ''}"
                                              f".{s}.{calls}calls.out")
                    total = w.counted_run(s, calls, keep=keep)
                    vals.append((total - zero) / calls)
                res.per_call[s] = vals
            except WorkerError as exc:
                res.na[s] = str(exc)
                if w.proc.poll() is not None:
                    for rest in scenarios:
                        res.na.setdefault(rest, f"worker died: {exc}")
                    break
    finally:
        w.close()
    return res


def run_parallel(jobs: list[Callable[[], Any]], parallel: int) -> list[Any]:
    results: list[Any] = [None] * len(jobs)
    lock = threading.Lock()
    queue = list(enumerate(jobs))

    def loop() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, job = queue.pop(0)
            try:
                results[i] = job()
            except Exception as exc:  # noqa: BLE001 - one failed job must not lose the others
                import traceback

                traceback.print_exc()
                results[i] = exc

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, parallel))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # wake up for signals
    return results


# ---------------------------------------------------------------------------------------------------
def wall_rounds(specs: list[VariantSpec], scenarios: list[str], rounds: int, calls_per_round: int, warmup: int,
                log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Interleaved rounds, per scenario: one fresh process per variant, all up at once; each round
    runs each variant once (order rotated, alternated, sometimes shuffled), ``calls_per_round``
    calls timed inside the worker. Returns, per variant and scenario, the median per-call time and
    the median (and quartiles) of the per-round paired differences against the baseline."""
    results: dict[str, dict[str, Any]] = {s.name: {} for s in specs}
    rng = random.Random(12345)
    for sc in scenarios:
        live: dict[str, Worker] = {}
        try:
            for spec in specs:
                if spec.python is None:
                    results[spec.name][sc] = {"na": spec.na}
                    continue
                try:
                    w = Worker(spec.python, spec.name.split("@")[0])
                    live[spec.name] = w
                    w.warm(sc, warmup)
                except WorkerError as exc:
                    results[spec.name][sc] = {"na": str(exc)}
                    live.pop(spec.name, None)
            times: dict[str, list[float]] = {n: [] for n in live}
            names = list(live)
            for r in range(rounds):
                order = names[r % len(names):] + names[: r % len(names)]
                if r % 2:
                    order.reverse()
                if r % 7 == 3:
                    rng.shuffle(order)
                for n in order:
                    times[n].append(live[n].run(sc, calls_per_round) / calls_per_round)
        finally:
            for w in live.values():
                w.close()
        for spec in specs:
            if spec.name not in times:
                continue
            t = times[spec.name]
            entry: dict[str, Any] = {"median_ns": statistics.median(t), "rounds": len(t)}
            base = times.get(spec.baseline)
            if base is not None and spec.baseline != spec.name:
                diffs = [a - b for a, b in zip(t, base)]
                q = statistics.quantiles(diffs, n=4) if len(diffs) >= 4 else [min(diffs), 0, max(diffs)]
                entry.update({"paired_diff_median_ns": statistics.median(diffs),
                              "paired_diff_q1_ns": q[0], "paired_diff_q3_ns": q[2]})
            floor = times.get("floor")
            if floor is not None and spec.name in ("ours", "ours-nosdk"):
                entry["paired_diff_vs_floor_median_ns"] = statistics.median([a - b for a, b in zip(t, floor)])
            results[spec.name][sc] = entry
        log(f"  wall {sc}: " + ", ".join(f"{n} {statistics.median(times[n]) / 1e3:.0f}us" for n in names))
    return results
