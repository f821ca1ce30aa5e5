"""``report --html``: the lanes per process and client show ok calls and scope errors in proportion, errors
coloured by their window's fleet verdict (issue 17), checked in the page's SVG and in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from otel_openai_scopes import verdicts as V
from otel_openai_scopes.tools.report import analyze, render_html
from tests.support.browser import ARTIFACTS, browser_flags, chromium
from tests.support.spans import MS, T0, call, err

SVG = "{http://www.w3.org/2000/svg}"


def lanes(page: str, cls: str) -> list[list[tuple[str, float, str]]]:
    """Per lane of class ``cls``: its bars as (fill, height, data-verdict)."""
    svg = ET.fromstring(re.search(r"<svg id=\"timeline\".*?</svg>", page, re.S).group(0))
    out = []
    for g in svg.iter(f"{SVG}g"):
        if g.get("class") == cls:
            out.append([(r.get("fill"), float(r.get("height")), r.get("data-verdict", ""))
                        for r in g.iter(f"{SVG}rect") if r.get("class") != "lane-bg"])
    return out


def flap(ok: int, errors: int) -> list:
    """One process, one client: ``ok`` successes and ``errors`` scope errors of one key, interleaved in 1 s."""
    n = ok + errors
    every = n / errors
    errs = {int(k * every) for k in range(errors)}
    return [err(T0 + i * MS, diagnosis=V.UNKNOWN) if i in errs else call(T0 + i * MS) for i in range(n)]


def test_a_bucket_of_101_ok_and_9_errors_is_mostly_green_with_the_errors_in_their_verdicts_colour():
    analysis = analyze(flap(101, 9), gap_seconds=5)
    assert [w.diagnosis for w in analysis.windows] == [V.SCOPE_FLAPPING]
    page = render_html(analysis, max_columns=1)  # one column: the whole second
    for cls in ("process-lane", "client-lane"):
        (bars,) = lanes(page, cls)
        ok = sum(h for fill, h, v in bars if fill == V.OK_COLOUR and not v)
        flapping = sum(h for fill, h, v in bars if v == V.SCOPE_FLAPPING and fill == V.meaning(V.SCOPE_FLAPPING).colour)
        assert {v for _, _, v in bars} == {"", V.SCOPE_FLAPPING}  # nothing drawn as never_granted
        assert abs(ok / flapping - 101 / 9) < 0.5, bars


def test_a_platform_flap_of_485_ok_and_477_errors_reads_as_half_and_half():
    analysis = analyze(flap(485, 477), gap_seconds=5)
    page = render_html(analysis, max_columns=4)
    (bars,) = lanes(page, "process-lane")
    ok = sum(h for fill, h, v in bars if not v)
    flapping = sum(h for fill, h, v in bars if v == V.SCOPE_FLAPPING)
    assert 0.9 < ok / flapping < 1.15
    assert V.meaning(V.NEVER_GRANTED).colour not in {fill for fill, _, _ in bars}


def test_each_lane_colours_errors_by_the_verdict_of_their_own_window():
    """One process: a flapping key and a restricted key failing in the same seconds; its lane shows both."""
    spans = flap(60, 20)
    spans += [err(T0 + i * 7 * MS, key="fp-restricted", client="c-2", diagnosis=V.NEVER_GRANTED) for i in range(10)]
    analysis = analyze(spans, gap_seconds=5)
    assert {w.fingerprint: w.diagnosis for w in analysis.windows} == {"fp-a": V.SCOPE_FLAPPING,
                                                                       "fp-restricted": V.NEVER_GRANTED}
    page = render_html(analysis, max_columns=1)
    (process,) = lanes(page, "process-lane")
    heights = {v: h for _, h, v in process}
    assert abs(heights[V.SCOPE_FLAPPING] / heights[V.NEVER_GRANTED] - 2) < 0.2
    assert abs(heights[""] / heights[V.SCOPE_FLAPPING] - 3) < 0.3
    clients = lanes(page, "client-lane")
    assert sorted({v for _, _, v in bars} for bars in clients) == sorted([{"", V.SCOPE_FLAPPING}, {V.NEVER_GRANTED}],
                                                                        key=sorted)


def test_flap_lanes_in_headless_chromium(tmp_path):
    browser = chromium()
    page = tmp_path / "flap.html"
    page.write_text(render_html(analyze(flap(485, 477), gap_seconds=5)))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-lanes-flap.png"
    if shot.exists():
        shot.unlink()
    flags = browser_flags(tmp_path, "1200,700")
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln] == []
    (bars,) = lanes(dom.stdout, "process-lane")
    assert {v for _, _, v in bars} == {"", V.SCOPE_FLAPPING}
    pic = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert pic.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, pic.stderr[-2000:]
    assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_templates_ship_as_package_data():
    """Every template file is matched by pyproject's package-data globs (a wheel without them has no HTML)."""
    import fnmatch

    root = Path(__file__).resolve().parents[1]
    line = re.search(r"^otel_openai_scopes = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.M).group(1)
    globs = re.findall(r'"([^"]+)"', line)
    package = root / "src" / "otel_openai_scopes"
    templates = sorted((package / "tools" / "report" / "templates").iterdir())
    assert {t.name for t in templates} >= {"page.html", "fragments.html", "report.css", "timeline.js"}
    for t in templates:
        assert any(fnmatch.fnmatch(t.relative_to(package).as_posix(), g) for g in globs), t
