"""The HTML report: a self-contained page (inline SVG timeline, tables) to attach to an incident ticket, written
from :func:`.html_model.build`'s data through the template files in ``templates/`` (package data).

Every value is escaped on the way into a template, in attributes and text alike, and untrusted text is made inert
(:func:`..terminal.clean`: control and bidi characters shown as escapes) line by line, so hover text keeps its
line breaks.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from ... import verdicts as V
from ..terminal import clean
from .html_model import LEFT, PLOT_W, TOP, Bar, Lane, Page, build

if TYPE_CHECKING:
    from .fold import Analysis

_MARK = re.compile(r"^<!-- (\w+) -->\n", re.MULTILINE)


class Markup(str):
    """Text already built from the templates: inserted as is."""


def _read(name: str) -> str:
    return (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")


@cache
def _fragments() -> dict[str, Template]:
    parts = _MARK.split(_read("fragments.html"))[1:]
    return {name: Template(body.rstrip("\n")) for name, body in zip(parts[::2], parts[1::2])}


def _value(v: object) -> str:
    if isinstance(v, Markup):
        return v
    if isinstance(v, float):
        return f"{v:.1f}"
    return html.escape("\n".join(clean(line) for line in str(v).split("\n")), quote=True)


def fill(template: Template, **values: object) -> Markup:
    return Markup(template.substitute({k: _value(v) for k, v in values.items()}))


def piece(fragment: str, **values: object) -> Markup:
    """One fragment of ``templates/fragments.html`` filled in."""
    return fill(_fragments()[fragment], **values)


def _join(pieces: list[Markup]) -> Markup:
    return Markup("".join(pieces))


def _bar(b: Bar) -> Markup:
    if b.verdict:
        return piece("err", verdict=b.verdict, x=b.x, y=b.y, w=b.w, h=b.h, fill=b.fill, tip=b.tip)
    return piece("ok", x=b.x, y=b.y, w=b.w, h=b.h, fill=b.fill, tip=b.tip)


def _lane(cls: str, lane: Lane) -> Markup:
    m = lane.marker
    marker = piece("marker", x_left=m.x - 5, x_right=m.x + 5, y_top=m.y - 1, x=m.x, y_tip=m.y + 8,
                   tip=m.tip) if m is not None else Markup("")
    return piece("lane", cls=cls, label_y=lane.y + lane.height - 4, name=lane.name, sub=lane.sub, left=LEFT,
                 y=lane.y, plot_w=PLOT_W, bg_h=lane.height - 2, bars=_join([_bar(b) for b in lane.bars]),
                 marker=marker)


def _axis(page: Page) -> Markup:
    lines = []
    for edge, (ya, label_y) in (("top", (TOP, 12)), ("bottom", (page.y_end, page.y_end + 14))):
        lines.append(piece("axis_line", left=LEFT, right=LEFT + PLOT_W, y=ya))
        for t in page.ticks:
            lines.append(piece("tick", x=t.x, y1=ya - 4, y2=ya + 4))
            if edge == "top":
                lines.append(piece("grid", x=t.x, y_end=page.y_end))
            lines.append(piece("tick_label", x=t.x, y=label_y, clock=t.clock, rel=t.rel))
    return piece("axis", lines=_join(lines))


def _timeline(page: Page) -> Markup:
    content = [piece("band", x=b.x, w=b.w, h=b.h, fill=b.colour, title=b.title, label_x=b.label_x, label=b.label)
               for b in page.bands]
    content.append(_axis(page))
    content.append(piece("section", y=58.0, text=f"Keys: ok calls (up) and scope errors (down) per "
                                               f"{page.step_label}"))
    for k in page.key_charts:
        content.append(piece("key", fingerprint=k.fingerprint, hint=k.hint, name=k.name, calls=k.calls,
                             errors=k.scope_errors, label_y=k.mid - 4, sub_y=k.mid + 12, left=LEFT,
                             right=LEFT + PLOT_W, mid=k.mid, bars=_join([_bar(b) for b in k.bars])))
    for g in page.lane_groups:
        content.append(piece("section", y=g.y, text=g.title))
        content.extend(_lane(g.cls, lane) for lane in g.lanes)
    return piece("svg", width=LEFT + PLOT_W + 60, height=page.height, t0=page.t0, t1=page.t1, left=LEFT,
                 plot_w=PLOT_W, content=_join(content), y_end=page.y_end, readout_y=page.height - 4)


def render(page: Page) -> str:
    """The page's HTML."""
    legend = [piece("legend", colour=c, text=t) for c, t in page.legend]
    legend.append(piece("legend_marks", ok_colour=V.OK_COLOUR))
    rows = [piece("row", cells=_join([piece("cell", text=c) for c in row])) for row in page.rows]
    return fill(Template(_read("page.html")), css=Markup(_read("report.css")), script=Markup(_read("timeline.js")),
                warnings=_join([piece("warning", text=w) for w in page.warnings]), legend=_join(legend),
                timeline=_timeline(page), rows=_join(rows),
                sentences=_join([piece("sentence", text=s) for s in page.sentences]), **page.totals)


def render_html(analysis: Analysis, max_columns: int = 120) -> str:
    return render(build(analysis, max_columns))


def write_html(analysis: Analysis, path: str | Path, max_columns: int = 120) -> Path:
    """Write the page to ``path`` (its directory must exist)."""
    path = Path(path)
    path.write_text(render_html(analysis, max_columns), encoding="utf-8")
    return path


__all__ = ["render", "render_html", "write_html"]
