"""A drill's report as one self-contained HTML page (inline CSS and SVG, no script needed).

It shows the goals' verdict, the figures, throughput over time against the original
traffic's shape, latency percentiles per endpoint (target against recorded production),
the status mix by method × status family, errors grouped with samples, and the earlier runs
of the same name. ``data`` is what shadowtap.drill.output.details returns.
"""

from __future__ import annotations

from typing import Any

from shadowtap.htmlpage import CSS, Markup, esc, join, svg_bars, svg_lines, table, tag

_TARGET_COLOR = "#4e79a7"
_PRODUCTION_COLOR = "#9e9e9e"
TOP_ENDPOINTS = 30


def render(data: dict[str, Any]) -> str:
    title = f"shadowtap drill {data['name']} — {data['started']}"
    parts = [
        tag("h1", title),
        tag("p", _overview(data), class_="note"),
        _goals(data),
        tag("h2", "Figures"),
        _figures(data),
        tag("h2", "Throughput against the original traffic"),
        _throughput(data),
        tag("h2", "Latency: target against recorded production"),
        _latency(data),
        tag("h2", "Status mix: method × status family"),
        _statuses(data),
        tag("h2", "Errors"),
        _errors(data),
        tag("h2", "Earlier runs of this drill"),
        _earlier(data),
    ]
    head = Markup(f'<meta charset="utf-8"><title>{esc(title)}</title><style>{CSS}</style>')
    page = f"<head>{head}</head><body>{tag('main', join(parts))}</body>"
    return f'<!doctype html>\n<html lang="en">{page}</html>\n'


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.3g}{unit}"


def _overview(data: dict[str, Any]) -> str:
    w = data["window"]
    filters = ", ".join(f"{k} {', '.join(v)}" for k, v in data["filters"].items() if v)
    partial = f" Partial window: {data['plan']['partial']}." if data["plan"]["partial"] else ""
    return (
        f"Window {w['from']} → {w['to']} (skew {w['skew_ms'] / 1000:g} s), "
        f"{filters or 'no filters'}; target {data['target']} at {data['speed']}; "
        f"state {data['state']}.{partial}"
    )


def _goals(data: dict[str, Any]) -> Markup:
    goals = data.get("goals") or []
    if not goals:
        return tag("p", "No goals were set: nothing gates this drill.", class_="note")
    verdict = "PASSED" if data["passed"] else "FAILED"
    rows = [
        [
            g["goal"],
            g["endpoint"] or "(whole drill)",
            _measure(g["goal"], g["value"]),
            _measure(g["goal"], g["limit"]),
            tag(
                "span", "pass" if g["passed"] else "fail", class_="pass" if g["passed"] else "fail"
            ),
            g["detail"],
        ]
        for g in goals
    ]
    banner = tag("div", f"Goals {verdict}", class_=f"banner {'pass' if data['passed'] else 'fail'}")
    return join([banner, table(["goal", "endpoint", "value", "limit", "result", "detail"], rows)])


def _verdict(passed: bool) -> Markup:
    word = "pass" if passed else "fail"
    return tag("span", word, class_=word)


def _measure(goal: str, value: float | None) -> str:
    if value is None:
        return "—"
    if "%" in goal:
        return _pct(value)
    return f"{value:.3g} s" if goal.rstrip().endswith("s") else f"{value:.3g}x"


def _figures(data: dict[str, Any]) -> Markup:
    f = data["figures"]
    speed = f["requested_speed"]
    ratio = f.get("latency_ratio") or {}
    lat = f.get("latency") or {}
    target, production = lat.get("target", {}), lat.get("production", {})
    rows: list[list[object]] = [
        ["success rate", _pct(f["success_rate"]), f"{f['succeeded']:,} of {f['sent']:,} sent"],
        [
            "coverage",
            _pct(f["coverage"]),
            f"{f['sent']:,} of {f['window_records']:,} window records sent"
            + (f", {f['blocked']:,} blocked by policy" if f["blocked"] else ""),
        ],
        [
            "speed achieved / requested",
            f"{_num(f['achieved_speed'], 'x')} / {'max' if speed is None else f'{speed:g}x'}",
            f"{f['recorded_s']:,.1f} s of recording in {f['wall_s']:,.1f} s",
        ],
        ["time to first success", _num(f["time_to_first_success_s"], " s"), ""],
        [
            "time to steady state",
            _num(f["time_to_steady_s"], " s"),
            f"success ≥ {f['steady_goal'] * 100:g} % for {f['steady_s']:g} s",
        ],
    ]
    for q in ("p50", "p95", "p99"):
        rows.append(
            [
                f"{q} target / production",
                _num(ratio.get(q), "x"),
                f"{_num(target.get(q), ' ms')} against {_num(production.get(q), ' ms')}",
            ]
        )
    return table(["figure", "value", "detail"], rows)


def _throughput(data: dict[str, Any]) -> Markup:
    sent = [(float(s), float(n)) for s, n in data["throughput"]]
    original = [(float(s), float(n)) for s, n in data["original_shape"]]
    chart = svg_lines(
        [
            ("target: requests sent / s", _TARGET_COLOR, sent),
            ("recorded / s (at the requested speed)", _PRODUCTION_COLOR, original),
        ],
        x_label="s",
        y_label="requests per second",
    )
    return chart or tag("p", "Nothing was sent.", class_="note")


def _latency(data: dict[str, Any]) -> Markup:
    rows = data["latency"][:TOP_ENDPOINTS]
    if not rows:
        return tag("p", "No latencies recorded.", class_="note")
    note = tag(
        "p",
        "Production's latency is the duration recorded by capture, inside the production "
        "server; the target's is measured by the drill from the request to the answer.",
        class_="note",
    )
    parts = [note]
    for row in rows:
        bars = []
        for side in ("production", "target"):
            q = row["sides"].get(side)
            if q is None:
                continue
            color = _PRODUCTION_COLOR if side == "production" else _TARGET_COLOR
            bars += [(f"{side} {k}", float(q[k]), color) for k in ("p50", "p95", "p99")]
        body = [
            [side, q["count"], q["p50"], q["p95"], q["p99"]] for side, q in row["sides"].items()
        ]
        if row["ratios"]:
            body.append(
                [
                    "target / production",
                    "",
                    *(_num(row["ratios"].get(k), "x") for k in ("p50", "p95", "p99")),
                ]
            )
        name = "every endpoint" if row["endpoint"] == "*" else row["endpoint"]
        parts.append(
            tag(
                "div",
                join(
                    [
                        tag("h3", name),
                        svg_bars(bars, lambda v: f"{v:.1f} ms"),
                        table(["side", "count", "p50 ms", "p95 ms", "p99 ms"], body),
                    ]
                ),
            )
        )
    return join(parts)


def _statuses(data: dict[str, Any]) -> Markup:
    mix = data["status_mix"]
    if not mix:
        return tag("p", "Nothing was sent.", class_="note")
    methods = sorted({m["method"] for m in mix})
    families = sorted({m["family"] for m in mix})
    counts = {(m["method"], m["family"]): m["count"] for m in mix}
    rows = [[method, *(counts.get((method, f), 0) for f in families)] for method in methods]
    bars = [
        (f"{m['method']} {m['family']}", float(m["count"]), _TARGET_COLOR)
        for m in sorted(mix, key=lambda m: -m["count"])
    ]
    return join([svg_bars(bars, lambda v: f"{v:,.0f}"), table(["method", *families], rows)])


def _errors(data: dict[str, Any]) -> Markup:
    groups = data["errors"]
    if not groups:
        return tag("p", "No request failed.", class_="note")
    rows = []
    for g in groups:
        samples = join(
            tag(
                "pre",
                f"{s['id']} {s['method']} {s['path']} → {s['status'] or 'no answer'} "
                f"after {s['attempts']} attempt(s) {s['error']}",
            )
            for s in g["samples"]
        )
        details = tag("details", join([tag("summary", f"{len(g['samples'])} sample(s)"), samples]))
        rows.append([g["kind"], g["endpoint"], g["count"], details])
    return table(["error", "endpoint", "count", "samples"], rows)


def _earlier(data: dict[str, Any]) -> Markup:
    runs = data["earlier"]
    if not runs:
        return tag("p", "This is the first run of this drill.", class_="note")
    rows = []
    for r in [*runs, data]:
        f = r.get("figures") or {}
        ratio = (f.get("latency_ratio") or {}).get("p99")
        rows.append(
            [
                r["started"] + (" (this run)" if r is data else ""),
                r.get("state"),
                r.get("target"),
                _pct(f.get("success_rate")),
                _pct(f.get("coverage")),
                _num(ratio, "x"),
                _num(f.get("time_to_first_success_s"), " s"),
            ]
        )
    head = ["started", "state", "target", "success", "coverage", "p99 / prod", "first success"]
    return table(head, rows)
