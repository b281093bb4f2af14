"""The diff report as one self-contained HTML file: inline CSS, JS and SVG, no external assets.

It shows the goals' verdicts, then per view the endpoints' mismatch rates (table and chart),
the top differing fields of each endpoint with example pairs side by side, a method ×
status-family table of every side, and latency charts (replayer-measured sides with their
ratios; production's server-side duration beside them, labelled, in no ratio).

Every value reaches the page through :func:`esc`, the one escaping function; markup built
here is :class:`Markup`, which ``esc`` leaves alone, so nothing is escaped twice or never.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from shadowtap.htmlpage import CSS as _CSS
from shadowtap.htmlpage import Markup, esc
from shadowtap.htmlpage import join as _join
from shadowtap.htmlpage import svg_bars as _svg_bars
from shadowtap.htmlpage import table as _table
from shadowtap.htmlpage import tag as _tag

TOP_ENDPOINTS = 30
TOP_FIELDS = 12
_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2")
_PRODUCTION_COLOR = "#9e9e9e"

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
        f"production response, {t.partial} with a cut body, {redelivered} redeliveries"
        + (f", {t.waiting} still waiting for a target." if t.waiting else ".")
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
