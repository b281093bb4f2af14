"""A drill's figures from deliveries on a fake clock, and its report files (the HTML in
headless Chromium)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

from shadowtap.drill.goals import evaluate, parse
from shadowtap.drill.output import write_reports
from shadowtap.drill.plan import Plan
from shadowtap.drill.report import DrillBook
from shadowtap.drill.window import Selection, Window
from shadowtap.envelope import Envelope, Response
from shadowtap.results import Delivery
from tests.unit.diff.test_report import _chromium, needs_chromium

T0 = 1_764_680_400_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _book() -> tuple[DrillBook, Clock]:
    plan = Plan("shadowtap.mirror", Window(T0, T0 + 120_000), Selection())
    envs = [
        Envelope(
            "GET" if i % 4 else "POST",
            f"/api/items/{i}",
            id=f"r{i}",
            ts=T0 + i * 1000,
            response=Response(200, duration_ms=10.0),
        )
        for i in range(100)
    ]
    for env in envs:
        plan.add(env, 100)
    clock = Clock()
    book = DrillBook(plan, speed=1.0, clock=clock)
    for i, env in enumerate(envs[:90]):  # 90 of 100 sent: coverage 90 %
        clock.now = 100.0 + i  # one a second, at 1x
        if i < 3:
            delivery = Delivery(error="connect refused", error_kind="connect", attempts=3)
        elif i == 50:
            delivery = Delivery(status=503, duration_ms=30.0, attempts=1)
        else:
            delivery = Delivery(status=200, duration_ms=20.0, attempts=1)
        book.add(env, delivery)
    book.add(envs[95], Delivery(error_kind="blocked", error="denied by rule"))
    return book, clock


def test_figures_from_what_was_delivered() -> None:
    book, _ = _book()
    f = book.figures(steady_s=30, steady_goal=0.99)
    assert (f["sent"], f["succeeded"], f["failed"], f["blocked"]) == (90, 86, 4, 1)
    assert f["success_rate"] == 86 / 90 and f["coverage"] == 0.9
    assert f["time_to_first_success_s"] == 3.0  # the first three found nothing listening
    # Every second from 3 on succeeds but second 50: the first 30 good seconds start at 3.
    assert f["time_to_steady_s"] == 3.0
    # 60 good seconds: 3..49 is 47 s, 51..89 is 39 s: never (a drill too short says so).
    assert book.time_to_steady(60, 0.99) is None
    assert book.time_to_steady(30, 0.99) == 3.0 and book.time_to_steady(48, 0.99) is None
    assert f["achieved_speed"] == 1.0 and f["requested_speed"] == 1.0
    # Quantile sketches: within 1 % of the true value.
    assert f["latency"]["target"]["p50"] == pytest.approx(20.0, rel=0.01)
    assert f["latency"]["production"]["p50"] == pytest.approx(10.0, rel=0.01)
    assert f["latency_ratio"]["p50"] == pytest.approx(2.0, rel=0.02)
    assert sorted(book.status_mix.items()) == [
        (("GET", "2xx"), 64),
        (("GET", "5xx"), 1),
        (("GET", "blocked"), 1),
        (("GET", "error"), 2),
        (("POST", "2xx"), 22),
        (("POST", "error"), 1),
    ]
    kinds = {(g.kind, g.count) for g in book.errors.values()}
    assert kinds == {("connect", 2), ("connect", 1), ("HTTP 503", 1)}


def test_report_files(tmp_path: Path) -> None:
    book, _ = _book()
    goals = [parse("success>=99.5%"), parse("p99<=1.5x"), parse("coverage>=90%")]
    figures = book.figures(30, 0.995)
    results = evaluate(goals, figures, book.latencies())
    record = {
        "name": "nightly",
        "started": "2026-12-02T08:00:00.000+00:00",
        "state": "done",
        "target": "http://dr.internal:8080",
        "speed": "1x",
        "window": book.plan.window.to_json(),
        "filters": Selection().to_json(),
        "figures": figures,
        "goals": [],
    }
    earlier = [{**record, "started": "2026-12-01T08:00:00.000+00:00", "figures": figures}]
    paths = write_reports(tmp_path, record, book, results, earlier)
    data = orjson.loads((tmp_path / "drill.json").read_bytes())
    assert data["passed"] is False and len(data["earlier"]) == 1
    assert data["errors"][0]["samples"][0]["error"] == "connect refused"
    suites = ET.parse(tmp_path / "drill.junit.xml").getroot()
    goal_suite = next(s for s in suites if s.get("name") == "goals")
    assert goal_suite.get("tests") == "3" and goal_suite.get("failures") == "2"
    assert [p.name for p in paths] == ["drill.json", "drill.junit.xml", "drill.html"]


@needs_chromium
def test_the_html_report_renders_without_console_errors(tmp_path: Path) -> None:
    book, _ = _book()
    record = {
        "name": "<script>alert(1)</script>",
        "started": "2026-12-02T08:00:00.000+00:00",
        "state": "paused",
        "target": "http://dr.internal:8080",
        "speed": "1x",
        "window": book.plan.window.to_json(),
        "filters": Selection(paths=("/api/*",)).to_json(),
        "figures": book.figures(30, 0.99),
        "goals": [],
    }
    write_reports(tmp_path, record, book, [], [])
    dom, console = _chromium(tmp_path / "drill.html", tmp_path)
    assert console == ""
    assert "<script>alert(1)" not in dom
    for content in ("Throughput against", "every endpoint", "HTTP 503", "<svg", "polyline"):
        assert content in dom


def test_progress_says_share_done_rate_errors_eta_and_lag() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from shadowtap.drill.progress import render, snapshot

    book, clock = _book()
    engine: Any = SimpleNamespace(delivered=91)
    figures = snapshot(book, engine, clock.now)  # 89 s after the first request
    assert figures["done"] == 91 and figures["total"] == 100
    assert figures["share"] == pytest.approx(89 / 120, abs=0.01)  # up to the newest sent
    assert figures["error_rate"] == pytest.approx(4 / 90)
    assert figures["eta_s"] == pytest.approx(9 / (91 / 89))
    assert figures["lag_s"] == pytest.approx(0.0)  # 1x, and on time
    out = Console(width=200, record=True)
    out.print(render(figures, "nightly"))
    text = out.export_text()
    assert "91/100" in text and "errors 4.44%" in text and "lag 0.0s" in text
