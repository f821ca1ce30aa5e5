"""The one sanitiser for untrusted text on terminals (``terminal.clean``), as properties: no C0/C1 control, no
bidirectional or invisible formatting character and no lone surrogate survives, each is shown as a visible escape,
the result always encodes as UTF-8, and printable text comes back unchanged. And on a real command: a path that is
not UTF-8 printed on a UTF-8 stdout."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from otel_openai_scopes.tools.terminal import clean

#: Characters that reorder or hide text: bidi marks, embeddings, overrides and isolates (Unicode's explicit
#: formatting characters), zero-width characters, line/paragraph separators and the BOM.
BIDI_AND_INVISIBLE = ("\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                      "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")
CONTROLS = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
#: Lone surrogates: a path or argument that is not UTF-8 (surrogateescape), a JSON "\ud800" escape.
SURROGATES = "".join(map(chr, range(0xD800, 0xE000)))
UNSAFE = frozenset(CONTROLS + BIDI_AND_INVISIBLE + SURROGATES)

hostile = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(sorted(UNSAFE)),
                                     st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)), max_size=200)
printable = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                           blacklist_characters=BIDI_AND_INVISIBLE), max_size=200)


def _visible(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


@given(hostile)
@example("\x1b]0;pwned\x07\x1b[1A\x1b[2KALL GRANTED\x1b]52;c;ZXZpbA==\x07")  # title, cursor up, erase, OSC 52
@example("invoice\u202egnp.exe\u2066\u2069\x9b31m\x85")
@example("/srv/app\udcff/main.py \ud800\udc00")  # surrogateescape'd byte; a pair of lone surrogates
def test_no_control_or_bidi_character_survives(text):
    out = clean(text)
    out.encode("utf-8")  # printable on a UTF-8 terminal: no lone surrogate left
    assert not UNSAFE.intersection(out), [hex(ord(c)) for c in UNSAFE.intersection(out)]
    assert all(unicodedata.category(c) != "Cc" for c in out)
    # every unsafe character became its visible escape, everything else is where it was
    assert out == "".join(_visible(c) if c in UNSAFE else c for c in text)


@given(printable)
@example("Missing scopes: api.threads.read — ½ «ünïcode» 日本語 🙂 \\x1b as typed")
def test_printable_text_is_unchanged(text):
    assert clean(text) == text


def test_escapes_are_visible_and_non_strings_are_shown():
    assert clean("\x1b[2J") == "\\x1b[2J"
    assert clean("a\u202eb") == "a\\u202eb"
    assert clean("tab\there\nnewline") == "tab\\x09here\\x0anewline"
    assert clean(401) == "401"
    assert clean("dir\udcff/r.html") == "dir\\udcff/r.html"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths are bytes")
def test_a_path_that_is_not_utf8_is_printed_as_an_escape_not_a_crash(tmp_path):
    """``report --html`` into a folder whose name is not UTF-8 writes the page, then says where: with that path raw
    on a UTF-8 stdout (PYTHONIOENCODING=utf-8: strict, as on a UTF-8 terminal) it died with exit 2, "internal error
    (UnicodeEncodeError ...)", after the report was written."""
    from test_report_hostile import T0, attrs, line, span

    telemetry = tmp_path / "t.jsonl"
    telemetry.write_bytes(line([span(T0 + k * 1_000_000, attrs()) for k in range(4)]))
    folder = os.path.join(os.fsencode(tmp_path), b"pages\xff")
    os.mkdir(folder)
    page = os.fsdecode(os.path.join(folder, b"r.html"))  # ".../pages\udcff/r.html"
    out = subprocess.run([str(Path(sys.executable).parent / "otel-openai-scopes"), "report", str(telemetry),
                          "--html", page], capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                         timeout=120)
    assert out.returncode == 1, out.stderr  # scope errors found: the documented code, not 2
    assert b"internal error" not in out.stderr, out.stderr
    assert b"HTML report: " + os.fsencode(tmp_path) + b"/pages\\udcff/r.html" in out.stdout, out.stdout[-500:]
    assert os.path.getsize(os.path.join(folder, b"r.html")) > 0
