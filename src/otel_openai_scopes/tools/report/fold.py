"""The streaming fold: one span at a time into lanes and windows, in memory bounded by :mod:`.limits`.

:class:`Analysis` holds the state; :meth:`Analysis.add` is the hot path of a report (a few dict look-ups and
counter increments per span). Every value from the file is bounded on its way in (:mod:`.read`), and every
container it lands in is capped. The fleet view is computed once at the end (:mod:`.evidence`), and parts of one
input folded apart merge exactly (:mod:`.merge`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ... import attributes as A
from ..otlp_decode import SpanRecord, process_label
from ..otlp_read import FileStats
from ..timegrid import DEFAULT_MAX_BUCKETS, Grid, Series
from . import limits as L
from .lanes import ClientLane, KeyLane, ProcessLane
from .read import clip, field_names, scope_names, status_code
from .windows import KeyTuple, Window, WindowSets

Endpoint = tuple[str, str]


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
    windows: list[Window] = field(default_factory=list)  # sorted, with fleet verdicts: set by finish()
    keys: dict[str, KeyLane] = field(default_factory=dict)
    processes: dict[str, ProcessLane] = field(default_factory=dict)
    clients: dict[str, ClientLane] = field(default_factory=dict)
    files: list[FileStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # (key tuple, (method, template), process) -> calls that passed the scope check
    passed: dict[tuple[KeyTuple, Endpoint, str], Series] = field(default_factory=dict)
    endpoint_scopes: dict[Endpoint, frozenset[str]] = field(default_factory=dict)
    window_sets: WindowSets = field(default_factory=WindowSets)
    contexts: set[tuple[str, str]] = field(default_factory=set)  # (organization, project) pairs seen, capped
    hosts: set[str] = field(default_factory=set)  # capped

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

    # -- lanes and endpoints, made on first sight up to their caps ---------------------------------------
    def _process(self, span: SpanRecord) -> ProcessLane:
        def make(pid: str) -> ProcessLane:
            label = clip(process_label(span.resource, span.source)) if pid != L.OTHER else "(more processes)"
            return ProcessLane.on(self.grid, pid, label)

        return L.capped(self.processes, clip(span.process), L.MAX_PROCESS_LANES, make, L.OTHER)

    def _key(self, fp: str) -> KeyLane:
        return L.capped(self.keys, fp, L.MAX_KEYS, lambda k: KeyLane(k, "", self.grid.new_series()), L.OTHER)

    def _client(self, cid: str, span: SpanRecord, process: str) -> ClientLane:
        def make(c: str) -> ClientLane:
            if c == L.OTHER:
                return ClientLane.on(self.grid, c, "", "")
            return ClientLane.on(self.grid, c, clip(span.get(A.CLIENT_ORIGIN), L.MAX_LONG_TEXT), process,
                                 clip(span.get(A.CLIENT_PARENT_ID)), field_names(span.get(A.CLIENT_COPY_CHANGED)))

        return L.capped(self.clients, cid, L.MAX_CLIENT_LANES, make, L.OTHER)

    def _endpoint(self, method: object, template: object, span: SpanRecord) -> Endpoint:
        """The call's (method, template), or (OTHER, OTHER) past MAX_ENDPOINTS; the scopes it requires are read
        from its first span."""
        ep = (clip(method, 16), clip(template))
        if ep in self.endpoint_scopes:
            return ep
        if len(self.endpoint_scopes) >= L.MAX_ENDPOINTS:
            ep = (L.OTHER, L.OTHER)
        self.endpoint_scopes.setdefault(ep, frozenset(scope_names(span.get(A.SCOPE_REQUIRED)))
                                        if ep[0] != L.OTHER else frozenset())
        return ep

    def _key_tuple(self, fp: str, span: SpanRecord) -> KeyTuple:
        """(fingerprint, organization, project, host) as sent; pairs past MAX_CONTEXTS and hosts past MAX_HOSTS
        read as OTHER."""
        get = span.attributes.get
        context = (clip(get(A.ORGANIZATION)), clip(get(A.PROJECT)))
        if context not in self.contexts:
            if len(self.contexts) >= L.MAX_CONTEXTS:
                context = (L.OTHER, L.OTHER)
            self.contexts.add(context)
        host = clip(get(A.HOST))
        if host not in self.hosts:
            if len(self.hosts) >= L.MAX_HOSTS:
                host = L.OTHER
            self.hosts.add(host)
        return fp, context[0], context[1], host

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
        fp = clip(get(A.KEY_FINGERPRINT))
        key = self.keys.get(fp) or self._key(fp)
        key.calls += 1
        if not key.hint:
            key.hint = clip(span.get(A.KEY_HINT))
        process = self.processes.get(span.process) or self._process(span)
        process.calls.add(i)
        process.total_calls += 1
        cid = clip(get(A.CLIENT_ID))
        client = self.clients.get(cid) or self._client(cid, span, process.id)
        if start < client.first_ns:  # its first call: the credentials it was built with
            client.first_ns = start
            client.key_tuple = self._key_tuple(key.fingerprint, span)
        if start > client.last_ns:
            client.last_ns = start
        mutated = get(A.CLIENT_MUTATED)
        if mutated:
            fields = field_names(mutated)
            if fields:
                client.mark_mutated(fields, start)
        ep = self._endpoint(method, template, span)
        if get(A.SCOPE_ERROR) is True:
            self.scope_errors += 1
            key.scope_errors += 1
            process.total_errors += 1
            w, wkey = self.window_sets.add(span, (*self._key_tuple(key.fingerprint, span),
                                                  scope_names(span.get(A.SCOPE_MISSING))),
                                           key.hint, process.id, f"{ep[0]} {ep[1]}", self.grid, self.gap_ns)
            w.errors_series.add(i)
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
        kt = self._key_tuple(key.fingerprint, span)
        pk = (kt, ep, process.id)
        series = self.passed.get(pk)
        if series is None:
            if len(self.passed) >= L.MAX_PASSED:
                pk = (kt, ep, L.OTHER)
                series = self.passed.get(pk)
            if series is None:
                series = self.passed[pk] = self.grid.new_series()
        series.add(i)

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
