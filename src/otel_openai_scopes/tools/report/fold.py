"""The streaming fold: one span at a time into lanes and windows, in memory bounded by :mod:`.limits`.

:class:`Analysis` holds the state; :meth:`Analysis.add` is the hot path of a report (a few dict look-ups and
counter increments per span). The fleet view is computed once at the end (:mod:`.evidence`), and parts of one
input folded apart merge exactly (:mod:`.merge`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ... import attributes as A
from ..otlp_json import FileStats, SpanRecord, process_label
from ..timegrid import DEFAULT_MAX_BUCKETS, Grid, Series
from . import limits as L
from .model import ClientLane, KeyLane, ProcessLane, Window, WindowKey, WindowSet
from .read import status_code, text, texts


@dataclass
class Analysis:
    """Everything the report prints: totals, windows with fleet verdicts, lanes for the timeline."""

    grid: Grid
    gap_ns: int
    spans: int = 0  # spans read (any instrumentation)
    calls: int = 0  # OpenAI calls (spans of this instrumentation)
    calls_ok: int = 0  # 2xx/3xx
    scope_errors: int = 0
    start_ns: int = 0
    end_ns: int = 0
    windows: list[Window] = field(default_factory=list)
    keys: dict[str, KeyLane] = field(default_factory=dict)
    processes: dict[str, ProcessLane] = field(default_factory=dict)
    clients: dict[str, ClientLane] = field(default_factory=dict)
    files: list[FileStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # (fingerprint, (method, template), process) -> calls that passed the scope check
    passed: dict[tuple[str, tuple[str, str], str], Series] = field(default_factory=dict)
    endpoint_scopes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    sets: dict[WindowKey, WindowSet] = field(default_factory=dict)

    @property
    def unreadable_lines(self) -> int:
        return sum(f.unreadable for f in self.files)

    @property
    def key_hints(self) -> dict[str, str]:
        return {fp: k.hint for fp, k in self.keys.items()}

    def diagnoses(self) -> Counter[str]:
        """Scope errors per fleet verdict."""
        out: Counter[str] = Counter()
        for w in self.windows:
            out[w.diagnosis] += w.errors
        return out

    def bucket_seconds(self) -> float:
        return self.grid.width_ns / 1e9

    # -- lanes, created on first sight up to their caps ------------------------------------------------
    def _process(self, span: SpanRecord) -> ProcessLane:
        def make(pid: str) -> ProcessLane:
            label = process_label(span.resource, span.source) if pid != L.OTHER else "(more processes)"
            return ProcessLane.on(self.grid, pid, label)

        return L.capped(self.processes, span.process, L.MAX_PROCESS_LANES, make)

    def _key(self, fp: str) -> KeyLane:
        return L.capped(self.keys, fp, L.MAX_KEYS, lambda k: KeyLane(k, "", self.grid.new_series()))

    def _client(self, cid: str, span: SpanRecord, process: str) -> ClientLane:
        def make(c: str) -> ClientLane:
            if c == L.OTHER:
                return ClientLane.on(self.grid, c, "", "")
            return ClientLane.on(self.grid, c, text(span.get(A.CLIENT_ORIGIN)), process)

        return L.capped(self.clients, cid, L.MAX_CLIENT_LANES, make)

    # -- one span ----------------------------------------------------------------------------------------
    def add(self, span: SpanRecord) -> None:
        """Fold one span in."""
        self.spans += 1
        get = span.attributes.get
        template = get(A.TEMPLATE)
        method = get(A.HTTP_METHOD)
        if template is None or method is None:
            return
        self.calls += 1
        start = span.start_ns
        if self.calls == 1 or start < self.start_ns:
            self.start_ns = start
        if span.end_ns > self.end_ns:
            self.end_ns = span.end_ns
        i = self.grid.index(start)
        fp = text(get(A.KEY_FINGERPRINT))
        key = self.keys.get(fp) or self._key(fp)
        key.calls += 1
        if not key.hint:
            key.hint = text(span.get(A.KEY_HINT))
        process = self.processes.get(span.process) or self._process(span)
        process.calls.add(i)
        process.total_calls += 1
        cid = text(get(A.CLIENT_ID))
        client = self.clients.get(cid) or self._client(cid, span, process.id)
        mutated = get(A.CLIENT_MUTATED)
        if mutated:
            if not client.mutated or start < client.mutated_first_ns:
                client.mutated_first_ns = start
            client.mutated.update(texts(mutated))
        if get(A.SCOPE_ERROR) is True:
            self.scope_errors += 1
            key.scope_errors += 1
            process.total_errors += 1
            wkey = self._window(span, fp, key.hint, process.id, i)
            process.add_error(wkey, i, self.grid)
            client.add_error(wkey, i, self.grid)
            return
        code = status_code(get(A.HTTP_STATUS))
        if 200 <= code < 400:
            self.calls_ok += 1
            key.ok.add(i)
            process.ok.add(i)
            client.ok.add(i)
        elif code != 404:  # 404: the server looked the object up, so the scope check passed
            return
        key.passed += 1
        endpoint = (text(method), text(template))
        series = self.passed.get((key.fingerprint, endpoint, process.id))
        if series is None:
            series = self.passed[(key.fingerprint, endpoint, process.id)] = self.grid.new_series()
            if endpoint not in self.endpoint_scopes:
                self.endpoint_scopes[endpoint] = set(texts(span.get(A.SCOPE_REQUIRED)))
        series.add(i)

    def _window(self, span: SpanRecord, fp: str, hint: str, process: str, i: int) -> WindowKey:
        wkey = (fp, tuple(sorted(set(texts(span.get(A.SCOPE_MISSING))))))
        wset = self.sets.get(wkey)
        if wset is None:
            wset = self.sets[wkey] = WindowSet()
        w, merged = wset.find(span.start_ns, span.end_ns, self.gap_ns)
        for m in merged:
            self.grid.drop(m.errors_series)
        if w is None:
            w = Window(fp, wkey[1], span.start_ns, span.end_ns, self.grid.new_series(), hint=hint)
            w.add(span, process)
            wset.insert(w)
        else:
            before = w.start_ns
            w.add(span, process)
            if w.start_ns != before or merged:
                wset.refresh(w)
        w.errors_series.add(i)
        return wkey

    # -- the end of the stream -----------------------------------------------------------------------------
    def finish(self) -> Analysis:
        """Fleet verdicts for every window (:func:`.evidence.finish`)."""
        from .evidence import finish

        finish(self)
        return self

    def merge(self, other: Analysis) -> bool:
        """Fold in the state of the spans right after this one's (:func:`.merge.merge`)."""
        from .merge import merge

        return merge(self, other)


def fold(spans: Iterable[SpanRecord], gap_seconds: float, max_buckets: int = DEFAULT_MAX_BUCKETS) -> Analysis:
    """The unfinished state of ``spans``."""
    analysis = Analysis(Grid(max_buckets), int(gap_seconds * 1e9))
    add = analysis.add
    for span in spans:
        add(span)
    return analysis


def analyze(spans: Iterable[SpanRecord], gap_seconds: float = 60.0,
            max_buckets: int = DEFAULT_MAX_BUCKETS) -> Analysis:
    """The finished analysis of ``spans``."""
    return fold(spans, gap_seconds, max_buckets).finish()
