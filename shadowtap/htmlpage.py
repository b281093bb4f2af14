"""Pieces every self-contained HTML report shares (diff, drill): one escaping function,
markup that is never escaped twice, tags and tables, horizontal SVG bars and the page style.

Every value reaches a page through :func:`esc`; markup built here is :class:`Markup`, which
``esc`` leaves alone, so nothing is escaped twice or never::

    table(["endpoint", "count"], [["GET /x", 3]])          # Markup
    svg_bars([("GET /x", 12.5, "#4e79a7")], lambda v: f"{v:.1f} ms")
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1200px;margin:auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;width:100%}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1b7f3b;font-weight:600}.fail{color:#b3261e;font-weight:600}
.badge{border-radius:9px;padding:0 7px;font-size:12px;white-space:nowrap}
.regression,.difference{background:#fde2e1;color:#8c1d18}.noise{background:#e8eaed}
.noise-class{background:#e3f0fb;color:#174a7c}.accepted{background:#e4f4e8;color:#1b5e20}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:6px}
.pair pre{margin:0;background:#f3f4f6;padding:4px 6px;white-space:pre-wrap;word-break:break-all}
.note{color:#5f6b7a}.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.pass{background:#e4f4e8}.banner.fail{background:#fde2e1}
input[type=search]{padding:4px 8px;width:320px}svg text{font-size:11px}
"""


class Markup(str):
    """Text that is already HTML."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """The one way a value reaches the page: escaped, unless it is already Markup."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, float):
        value = f"{value:,.3f}".rstrip("0").rstrip(".")
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def tag(name: str, content: object = "", **attrs: object) -> Markup:
    shown = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return Markup(f"<{name}{shown}>{esc(content)}</{name}>")


def table(head: Sequence[object], rows: Iterable[Sequence[object]], **attrs: object) -> Markup:
    header = tag("tr", join(tag("th", h) for h in head))
    body = join(
        tag("tr", join(tag("td", c, class_="n") if numeric(c) else tag("td", c) for c in row))
        for row in rows
    )
    return tag("table", join([header, body]), **attrs)


def numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def svg_bars(bars: Sequence[tuple[str, float, str]], fmt: object) -> Markup:
    """A horizontal bar chart: one labelled bar per value."""
    if not bars:
        return Markup("")
    width, label_w, row_h = 760, 300, 18
    top = max(v for _, v, _ in bars) or 1.0
    shapes = []
    for i, (label, value, color) in enumerate(bars):
        y = i * row_h
        w = max(1.0, (width - label_w - 90) * value / top)
        shown = fmt(value) if callable(fmt) else value
        shapes.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(label[:48])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{esc(color)}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{esc(shown)}</text>'
        )
    height = row_h * len(bars)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img">{"".join(shapes)}</svg>'
    )


def svg_lines(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]],
    x_label: str = "",
    y_label: str = "",
) -> Markup:
    """A line chart: one labelled polyline per series of (x, y) points, with a legend."""
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return Markup("")
    width, height, left, bottom, top_pad = 760, 240, 50, 28, 24
    max_x = max(x for x, _ in points) or 1.0
    max_y = max(y for _, y in points) or 1.0

    def at(x: float, y: float) -> str:
        px = left + (width - left - 10) * x / max_x
        py = top_pad + (height - bottom - top_pad) * (1 - y / max_y)
        return f"{px:.1f},{py:.1f}"

    shapes = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#888"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top_pad + 4}" text-anchor="end">{esc(f"{max_y:g}")}</text>',
        f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">'
        f"{esc(f'{max_x:g} {x_label}')}</text>",
        f'<text x="{left + 4}" y="{top_pad - 2}" fill="#5f6b7a">{esc(y_label)}</text>',
    ]
    for i, (label, color, pts) in enumerate(series):
        if pts:
            line = " ".join(at(x, y) for x, y in pts)
            shapes.append(
                f'<polyline points="{line}" fill="none" stroke="{esc(color)}" stroke-width="1.5"/>'
            )
        shapes.append(
            f'<rect x="{left + 150 + i * 220}" y="2" width="10" height="10" '
            f'fill="{esc(color)}"/><text x="{left + 164 + i * 220}" y="11">'
            f"{esc(label)}</text>"
        )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 6}" '
        f'role="img">{"".join(shapes)}</svg>'
    )
