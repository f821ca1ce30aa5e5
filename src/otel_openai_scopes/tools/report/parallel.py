"""Reading files into a finished analysis: one streaming pass, or, for one large plain file, byte ranges folded
by forked processes whose pickled states merge into exactly what one pass gives (:mod:`.merge`).

The stream allocates millions of short-lived containers and creates no cycles: the cyclic garbage collector would
only rescan them (a third of the run time), so it pauses for the pass.
"""

from __future__ import annotations

import gc
import os
import pickle
import threading
from collections.abc import Sequence
from pathlib import Path

from ..otlp_read import file_warnings, split_points
from ..timegrid import DEFAULT_MAX_BUCKETS
from .fold import Analysis, fold
from .read import reader

#: A single plain file at least this big is read by several processes, each its own byte range.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def analyze_files(paths: Sequence[str | Path], gap_seconds: float = 60.0,
                  max_buckets: int = DEFAULT_MAX_BUCKETS, workers: int | None = None,
                  parallel_min_bytes: int = PARALLEL_MIN_BYTES) -> Analysis:
    """Stream the files into a finished analysis. Raises ``otlp_read.UnreadableFile`` for a file that cannot be
    opened; per-file counts of read and unreadable lines end up in ``files`` and ``warnings``.

    One plain (not gzip) file of ``parallel_min_bytes`` or more is cut at line boundaries into ``workers``
    byte ranges (default: 2 when 2 CPUs are usable and this process runs one thread, since a fork could copy
    a lock another thread holds) decoded by forked processes; else, or when the merge would not be exact, the
    file is read in one pass."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        analysis = None
        if workers is None:
            n = min(2, _cpus()) if threading.active_count() == 1 else 1
        else:
            n = workers
        if n > 1 and len(paths) == 1 and hasattr(os, "fork"):
            analysis = _parallel(Path(paths[0]), n, gap_seconds, max_buckets, parallel_min_bytes)
        if analysis is None:
            spans = reader(paths)
            analysis = fold(spans, gap_seconds, max_buckets)
            analysis.files = spans.files
        analysis.finish()
    finally:
        if collecting:
            gc.enable()
    analysis.warnings = file_warnings(analysis.files) + analysis.warnings  # then the caps reached
    return analysis


def _fold_range(path: Path, start: int, end: int, gap_seconds: float, max_buckets: int) -> Analysis:
    spans = reader([path], byte_range=(start, end))
    part = fold(spans, gap_seconds, max_buckets)
    part.files = spans.files
    return part


def _parallel(path: Path, workers: int, gap_seconds: float, max_buckets: int, min_bytes: int) -> Analysis | None:
    """The file's analysis from ``workers`` byte ranges (the first read here, the others in forked children),
    or None: not a large plain file, no line boundary to cut at, nothing read, or a merge that would not be
    exact."""
    try:
        with open(path, "rb") as f:
            plain = f.read(2) != b"\x1f\x8b"
        if not plain or path.stat().st_size < min_bytes:
            return None
        points = split_points(path, workers)
    except OSError:
        return None
    if len(points) < 3:
        return None
    children = [_fork_part(path, a, b, gap_seconds, max_buckets) for a, b in zip(points[1:-1], points[2:])]
    analysis = _fold_range(path, points[0], points[1], gap_seconds, max_buckets)
    exact = True
    for (a, b), child in zip(zip(points[1:-1], points[2:]), children):
        part = _collect(child)
        if part is None:  # the child failed: read its range here
            part = _fold_range(path, a, b, gap_seconds, max_buckets)
        exact = exact and analysis.merge(part)
    if not exact or not analysis.calls:
        return None  # "nothing readable" needs the whole file's first bytes to say why
    return analysis


def _fork_part(path: Path, start: int, end: int, gap_seconds: float, max_buckets: int) -> tuple[int, int] | None:
    """(pid, read end of a pipe) of a child folding bytes [start, end) and writing its pickled state."""
    try:
        r, w = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            os.close(r)
            data = pickle.dumps(_fold_range(path, start, end, gap_seconds, max_buckets), pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(child: tuple[int, int] | None) -> Analysis | None:
    if child is None:
        return None
    pid, r = child
    chunks = []
    with os.fdopen(r, "rb") as pipe:
        while True:
            chunk = pipe.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        return None
    try:
        part = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - a damaged state is read again here, never trusted
        return None
    return part if isinstance(part, Analysis) else None
