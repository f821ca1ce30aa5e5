"""Mask anything credential-shaped in text before it goes on a span, a metric or a log line.

Error messages, codes, scope lists and header values come from the server, a proxy or an exception
and may quote a key, whole or in pieces. One mechanism masks them all, and it can only ever remove
more: the spans of every generic credential pattern and of every run of 8 or more characters that
also occurs in a credential the call sent are found on the original text, united, and each united
span becomes ``***``. A credential's 8-character windows are computed once per distinct credential
(cached, bounded in total windows); windows inside its documented type prefix (``sk-proj-``) are
not secret and are left, so a key hint (``sk-proj-...WXYZ``) or a fingerprint is never masked.

Every function here returns valid Unicode (lone surrogates replaced, see :mod:`.text`); :func:`safe_message` and
:func:`mask_value` also replace control characters. These functions are the gate every outside value passes
on its way to a span, an event, a metric or a log line.
"""

from __future__ import annotations

import re
import threading

from .fingerprint import key_prefix
from .forking import after_fork_in_child
from .text import printable_text, valid_text

MAX_MESSAGE_CHARS = 512
MASK = "***"
#: Shortest run shared with a sent credential that is masked (the leak tests' window).
WINDOW = 8
#: Longest credential whose windows are indexed (longer ones are indexed by this prefix and their tail).
MAX_SECRET_CHARS = 8192
#: Windows kept in the cache over all credentials (about 80 bytes each: a few MB at most).
MAX_CACHED_WINDOWS = 65_536

_PATTERNS = re.compile(
    # OpenAI keys of every kind, also partly starred ones; not a hint (``sk-proj-...WXYZ``).
    r"(?:sk-(?![A-Za-z]*-?\.\.\.)[A-Za-z0-9_\-*]{3,})"
    r"|(?:(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{4,})"  # bearer tokens
    r"|(?:eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*)"  # JWTs
    r"|(?:\b[A-Za-z0-9_\-]{48,}\b)"  # any long opaque token
    r"|(?:\b[0-9a-fA-F]{32,}\b)"  # long hex (Azure keys)
)
_KEY_PROVIDED = re.compile(r"(?i)api[ _-]?key(?: provided)?\s*[:=]\s*(\S+)")
# Values no generic pattern can match (short word-only values, ``req_<hex>`` request ids): the patterns are
# skipped for them, which is most of the cost of masking a header value.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_]{0,31}|req_[0-9A-Fa-f]{1,43}")
_REQUEST_ID = re.compile(r"req_[0-9A-Fa-f]{1,43}")
_REQUEST_ID_CHARS = frozenset("req_0123456789abcdefABCDEF")

Span = tuple[int, int]


class Windows:
    """A credential's secret 8-character windows, and all its 4-character windows (a cheap pre-check: a run
    of 8 shared characters always contains a shared 4-character window at a multiple of 4)."""

    __slots__ = ("eight", "four", "request_id_windows")

    def __init__(self, secret: str) -> None:
        self.eight = secret_windows(secret)
        self.four = frozenset(secret[i:i + 4] for i in range(len(secret) - 3)) if self.eight else frozenset()
        #: The windows a ``req_<hex>`` request id could share (made of its characters only; usually none).
        self.request_id_windows = tuple(sorted(w for w in self.eight if set(w) <= _REQUEST_ID_CHARS))

    def __len__(self) -> int:
        return len(self.eight) + len(self.four)

    def shares_with(self, text: str) -> bool:
        """Whether ``text`` may share a run of 8 characters with the credential (never a false no)."""
        four = self.four
        for i in range(0, len(text) - 3, 4):  # noqa: SIM110 - a plain loop: any() over a generator costs more
            if text[i:i + 4] in four:
                return True
        return False


class _WindowCache:
    """Credential -> its :class:`Windows`; bounded in total windows.

    A plain dict under a lock that is replaced in a forked child (see :func:`_after_fork`); when the
    budget is exceeded the whole cache is dropped (each entry is cheap to rebuild, and rebuilding is
    once per distinct credential).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, Windows] = {}
        self.windows = 0

    def get(self, secret: str) -> Windows:
        hit = self.entries.get(secret)
        if hit is not None:
            return hit
        grams = Windows(secret)
        with self.lock:
            if self.windows + len(grams) > MAX_CACHED_WINDOWS:
                self.entries = {}
                self.windows = 0
            if secret not in self.entries:
                self.entries[secret] = grams
                self.windows += len(grams)
        return grams


def secret_windows(secret: str) -> frozenset[str]:
    """Every 8-character window of ``secret`` except those inside its type prefix (pure)."""
    if len(secret) > MAX_SECRET_CHARS:
        half = MAX_SECRET_CHARS // 2
        secret = secret[:half] + "\x00" + secret[-half:]
    start = len(key_prefix(secret))
    first = max(0, start - WINDOW + 1)
    return frozenset(
        w for i in range(first, len(secret) - WINDOW + 1)
        if "\x00" not in (w := secret[i:i + WINDOW]) and i + WINDOW > start
    )


_CACHE = _WindowCache()


def windows_for(secret: str) -> Windows:
    """Cached :func:`secret_windows` (one computation per distinct credential)."""
    return _CACHE.get(secret)


def _shared_spans(text: str, grams: frozenset[str], out: list[Span]) -> None:
    """Append the maximal spans of ``text`` covered by windows in ``grams``."""
    start = end = -1
    for i in range(len(text) - WINDOW + 1):
        if text[i:i + WINDOW] in grams:
            if i <= end:
                end = i + WINDOW
            else:
                if end > 0:
                    out.append((start, end))
                start, end = i, i + WINDOW
    if end > 0:
        out.append((start, end))


def _apply(text: str, spans: list[Span]) -> str:
    spans.sort()
    parts: list[str] = []
    pos = 0
    cur_start, cur_end = spans[0]
    for s, e in spans[1:]:
        if s <= cur_end:
            if e > cur_end:
                cur_end = e
            continue
        parts.append(text[pos:cur_start])
        parts.append(MASK)
        pos = cur_end
        cur_start, cur_end = s, e
    parts.append(text[pos:cur_start])
    parts.append(MASK)
    parts.append(text[cur_end:])
    return "".join(parts)


def mask_credentials(text: str, *secrets: str | None) -> str:
    """``text`` with every generic credential pattern and every 8+-character run shared with one of
    ``secrets`` replaced by ``***`` (the union of both, found on the original text); valid Unicode."""
    text = valid_text(text)
    spans: list[Span] = []
    if _PLAIN_VALUE.fullmatch(text) is None:
        spans = [m.span() for m in _PATTERNS.finditer(text)]
        for m in _KEY_PROVIDED.finditer(text):
            spans.append(m.span(1))
    all_grams: list[frozenset[str]] = []
    for secret in secrets:
        if secret and len(secret) >= WINDOW:
            windows = windows_for(secret)
            if windows.eight and windows.shares_with(text):
                all_grams.append(windows.eight)
                _shared_spans(text, windows.eight, spans)
    if not spans:
        return text
    text = _apply(text, spans)
    # A credential containing "*" could line up with a mask; mask until nothing is shared.
    for _ in range(3):
        again: list[Span] = []
        for grams in all_grams:
            _shared_spans(text, grams, again)
        if not again:
            break
        text = _apply(text, again)
    return text


def looks_like_credential(text: str) -> bool:
    """Whether ``text`` holds anything :func:`mask_credentials` masks without being told a credential (a key, a
    bearer token, a JWT, a long opaque or hex token, ``api key: ...``)."""
    return _PATTERNS.search(text) is not None or _KEY_PROVIDED.search(text) is not None


def mask_value(value: str, *secrets: str | None, limit: int = 128) -> str:
    """A header or field value, masked like a message and bounded to ``limit`` characters; control characters
    and lone surrogates replaced."""
    value = printable_text(value[: limit * 2])
    if len(value) >= 3:
        value = mask_credentials(value, *secrets)
    return value[:limit]


def mask_request_id(value: str, secret: str | None) -> str:
    """:func:`mask_value` for a request id; OpenAI's ``req_<hex>`` shape is checked in one step (it runs on
    every call)."""
    if _REQUEST_ID.fullmatch(value) is not None:
        if not secret or len(secret) < WINDOW:
            return value
        windows = _CACHE.entries.get(secret) or windows_for(secret)  # the hit inline: this runs on every call
        for window in windows.request_id_windows:  # a substring search each, in C
            if window in value:
                return mask_value(value, secret)
        return value
    return mask_value(value, secret)


def safe_message(text: object, *secrets: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Masked, single-line, bounded text for span status descriptions and logs (valid Unicode, controls
    replaced)."""
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception:  # noqa: BLE001 - an object whose __str__ raises has no message to give
            text = ""
    # Bound the work before masking (never run regexes over an unbounded body), and fold whitespace and
    # replace what is not printable first, so that the masked text is what is exported.
    text = mask_credentials(printable_text(" ".join(text[: limit * 4].split())), *secrets)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _after_fork() -> None:
    """In a forked child: a lock held by a thread that no longer exists must not be inherited."""
    _CACHE.lock = threading.Lock()


after_fork_in_child(_after_fork)
