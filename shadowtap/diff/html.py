"""The diff report as one self-contained HTML file: inline CSS, JS and SVG, no external assets.

It shows the goals' verdicts, then per view the endpoints' mismatch rates (table and chart),
the top differing fields of each endpoint with example pairs side by side, a method ×
status-family table of every side, and latency charts (replayer-measured sides with their
ratios; production's server-side duration beside them, labelled, in no ratio).

Every value reaches the page through :func:`esc`, the one escaping function; markup built
here is :class:`Markup`, which ``esc`` leaves alone, so nothing is escaped twice or never.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from shadowtap.diff.summary import (
    FLAGGED,
    EndpointSummary,
    FieldSummary,
    LatencySummary,
    Summary,
    ViewSummary,
)

TOP_ENDPOINTS = 30
TOP_FIELDS = 12
_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2")
_PRODUCTION_COLOR = "#9e9e9e"

_CSS = """
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

_JS = """
(function(){
  var box=document.getElementById('filter');
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    document.querySelectorAll('[data-endpoint]').forEach(function(el){
      el.style.display=el.getAttribute('data-endpoint').toLowerCase().indexOf(q)>=0?'':'none';
    });
  });
  document.body.setAttribute('data-ready','1');
})();
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


def _join(parts: Iterable[object]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def _tag(name: str, content: object = "", **attrs: object) -> Markup:
    shown = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return Markup(f"<{name}{shown}>{esc(content)}</{name}>")


def _table(head: Sequence[object], rows: Iterable[Sequence[object]], **attrs: object) -> Markup:
    header = _tag("tr", _join(_tag("th", h) for h in head))
    body = _join(
        _tag("tr", _join(_tag("td", c, class_="n") if _numeric(c) else _tag("td", c) for c in row))
        for row in rows
    )
    return _tag("table", _join([header, body]), **attrs)


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def render(summary: Summary, title: str = "shadowtap diff report") -> str:
    """The whole report page."""
    parts: list[Markup] = [
        _tag("h1", title),
        _tag("p", _overview(summary), class_="note"),
        _goals(summary),
        Markup('<p><input type="search" id="filter" placeholder="filter endpoints…"></p>'),
    ]
    parts += [_view(view) for view in summary.views]
    parts += [_tag("h2", "Statuses: method × status family"), _statuses(summary)]
    parts += [_tag("h2", "Latency"), _latency(summary)]
    head = Markup(f'<meta charset="utf-8"><title>{esc(title)}</title><style>{_CSS}</style>')
    body = _tag("main", _join(parts))
    page = f"<head>{head}</head><body>{body}<script>{_JS}</script></body>"
    return f'<!doctype html>\n<html lang="en">{page}</html>\n'


def write_html(summary: Summary, path: str | Path, title: str = "shadowtap diff report") -> Path:
    path = Path(path)
    path.write_text(render(summary, title), encoding="utf-8")
    return path


def _overview(summary: Summary) -> str:
    t = summary.totals
    roles = (
        ", ".join(f"{role}: {name}" for role, name in summary.roles.items()) or "production only"
    )
    redelivered = sum(t.redeliveries.values())
    incomplete = sum(t.incomplete.values())
    return (
        f"Mode {summary.mode} ({roles}). {t.records} records, {t.compared} compared, "
        f"{t.unpaired} unpaired, {incomplete} incomplete, {t.no_production} without a "
        f"production response, {t.partial} with a cut body, {redelivered} redeliveries."
    )


def _goals(summary: Summary) -> Markup:
    if not summary.goals:
        return _tag("p", "No goals were set: nothing gates this run.", class_="note")
    verdict = "PASSED" if summary.passed else "FAILED"
    rows = [
        [
            g.goal,
            g.endpoint or "(whole run)",
            _measure(g.goal, g.value),
            _measure(g.goal, g.limit),
            _tag("span", "pass" if g.passed else "fail", class_="pass" if g.passed else "fail"),
            g.detail,
        ]
        for g in summary.goals
    ]
    banner = _tag(
        "div", f"Goals {verdict}", class_=f"banner {'pass' if summary.passed else 'fail'}"
    )
    return _join([banner, _table(["goal", "endpoint", "value", "limit", "result", "detail"], rows)])


def _measure(goal: str, value: float | None) -> str:
    if value is None:
        return "—"
    return _pct(value) if "%" in goal else f"{value:.2f}x"


def _view(view: ViewSummary) -> Markup:
    endpoints = view.endpoints[:TOP_ENDPOINTS]
    rows = [
        [
            e.endpoint,
            e.compared,
            e.mismatched,
            _pct(e.mismatch_rate) + ("" if e.mismatch_exact else " (at most)"),
            e.unpaired,
            sum(e.incomplete.values()),
            e.no_production,
            e.partial,
            e.fields_capped,
        ]
        for e in endpoints
    ]
    head = ["endpoint", "compared", "mismatched", "rate", "unpaired", "incomplete"]
    head += ["no production", "cut body", "capped field diffs"]
    parts = [
        _tag("h2", view.label),
        _bars([(e.endpoint, e.mismatch_rate) for e in endpoints if e.compared], _pct),
        _table(head, rows),
    ]
    if view.endpoints_capped:
        parts.append(
            _tag("p", f"{view.endpoints_capped} records past the endpoint cap.", class_="note")
        )
    parts += [_endpoint_fields(view, e) for e in endpoints if e.fields]
    return _tag("section", _join(parts), data_view=view.name)


def _endpoint_fields(view: ViewSummary, ep: EndpointSummary) -> Markup:
    head = ["field", "verdict", f"{view.second} vs {view.first}"]
    if view.learned:
        head += ["baselines differ", "relative %", "absolute %"]
    head += ["noise-class", "kinds", "examples"]
    rows = []
    for f in ep.fields[:TOP_FIELDS]:
        row: list[object] = [
            f.field,
            _tag("span", f.verdict, class_=f"badge {f.verdict}"),
            f.differences,
        ]
        if view.learned:
            row += [f.baseline_differences, f.relative, f.absolute]
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(f.kinds.items()))
        row += [f.noise_class, kinds, _samples(f, view)]
        rows.append(row)
    flagged = sum(f.verdict in FLAGGED for f in ep.fields)
    title = f"{ep.endpoint}: {flagged} flagged of {len(ep.fields)} differing fields"
    return _tag("div", _join([_tag("h3", title), _table(head, rows)]), data_endpoint=ep.endpoint)


def _samples(f: FieldSummary, view: ViewSummary) -> Markup:
    if not f.samples:
        return Markup("")
    items = []
    for s in f.samples[:3]:
        caption = f"{s.method} {s.path} · {s.where} · {s.kind}" + (
            f" · {s.noise}" if s.noise else ""
        )
        pair = _tag(
            "div",
            _join(
                [
                    _tag("pre", f"{view.first}: {_json(s.a)}"),
                    _tag("pre", f"{view.second}: {_json(s.b)}"),
                ]
            ),
            class_="pair",
        )
        items.append(_tag("div", _join([_tag("div", caption, class_="note"), pair])))
    return _tag("details", _join([_tag("summary", f"{len(f.samples)} sample(s)"), *items]))


def _json(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


def _statuses(summary: Summary) -> Markup:
    sides = list(summary.statuses)
    methods = sorted({m for counts in summary.statuses.values() for m in counts})
    families = sorted({f for c in summary.statuses.values() for m in c.values() for f in m})
    rows = []
    for method in methods:
        row: list[object] = [method]
        for family in families:
            counts = [summary.statuses[s].get(method, {}).get(family, 0) for s in sides]
            text = " · ".join(f"{s} {n}" for s, n in zip(sides, counts, strict=True))
            row.append(_tag("span", text, class_="fail") if len(set(counts)) > 1 else text)
        rows.append(row)
    if not rows:
        return _tag("p", "No responses recorded.", class_="note")
    return _table(["method", *families], rows)


def _latency(summary: Summary) -> Markup:
    if not summary.latency:
        return _tag("p", "No latencies recorded.", class_="note")
    note = _tag(
        "p",
        "Ratios compare the candidate with the baseline, both measured by the replayer. "
        "Production's duration is measured inside the production server (server-side): shown "
        "beside them in grey, never part of a ratio.",
        class_="note",
    )
    parts = [note]
    for row in summary.latency[:TOP_ENDPOINTS]:
        parts.append(
            _tag(
                "div",
                _join([_tag("h3", row.endpoint), _latency_chart(row), _latency_table(row)]),
                data_endpoint=row.endpoint,
            )
        )
    return _join(parts)


def _latency_table(row: LatencySummary) -> Markup:
    rows: list[list[object]] = [
        [name + (" (server-side)" if name == "production" else ""), q.count, q.p50, q.p95, q.p99]
        for name, q in row.sides.items()
    ]
    for label, ratios in (
        ("candidate / baseline", row.ratios),
        ("secondary / baseline", row.noise_ratios),
    ):
        if ratios:
            rows.append([label, "", *(f"{ratios.get(k, 0):.2f}x" for k in ("p50", "p95", "p99"))])
    return _table(["side", "count", "p50 ms", "p95 ms", "p99 ms"], rows)


def _latency_chart(row: LatencySummary) -> Markup:
    bars = []
    for i, (name, q) in enumerate(row.sides.items()):
        color = _PRODUCTION_COLOR if name == "production" else _COLORS[i % len(_COLORS)]
        for quantile in ("p50", "p95", "p99"):
            bars.append((f"{name} {quantile}", float(getattr(q, quantile)), color))
    return _svg_bars(bars, lambda v: f"{v:.1f} ms")


def _bars(values: Sequence[tuple[str, float]], fmt: object) -> Markup:
    return _svg_bars([(label, value, _COLORS[0]) for label, value in values], fmt)


def _svg_bars(bars: Sequence[tuple[str, float, str]], fmt: object) -> Markup:
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
