"""The one sanitiser for untrusted text on terminals (``terminal.clean``), as properties: no C0/C1 control and no
bidirectional or invisible formatting character survives, each is shown as a visible escape, and printable text
comes back unchanged."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from otel_openai_scopes.tools.terminal import clean

#: Characters that reorder or hide text: bidi marks, embeddings, overrides and isolates (Unicode's explicit
#: formatting characters), zero-width characters, line/paragraph separators and the BOM.
BIDI_AND_INVISIBLE = ("\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                      "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")
CONTROLS = "".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
UNSAFE = frozenset(CONTROLS + BIDI_AND_INVISIBLE)

hostile = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(sorted(UNSAFE))), max_size=200)
printable = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                           blacklist_characters=BIDI_AND_INVISIBLE), max_size=200)


def _visible(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


@given(hostile)
@example("\x1b]0;pwned\x07\x1b[1A\x1b[2KALL GRANTED\x1b]52;c;ZXZpbA==\x07")  # title, cursor up, erase, OSC 52
@example("invoice\u202egnp.exe\u2066\u2069\x9b31m\x85")
def test_no_control_or_bidi_character_survives(text):
    out = clean(text)
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
