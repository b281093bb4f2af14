"""The drill's window, filters, idle-gap cap and goals: pure logic, no broker."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowtap.clock import parse_when
from shadowtap.diff.summary import LatencySummary, Quantiles
from shadowtap.drill.gaps import gap_warp
from shadowtap.drill.goals import evaluate, parse, steady_goal
from shadowtap.drill.window import Selection, Window, iso
from shadowtap.envelope import Envelope
from shadowtap.errors import ConfigError

NOW = 1_764_680_400_000  # 2025-12-02T13:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-2h", NOW - 7_200_000),
        ("-90m", NOW - 5_400_000),
        ("-1h30m", NOW - 5_400_000),
        ("-1d", NOW - 86_400_000),
        ("-0.5s", NOW - 500),
        ("2025-12-02T13:00:00Z", NOW),
        ("2025-12-02T13:00", NOW),  # no zone: UTC
        ("2025-12-02T14:00:00+01:00", NOW),
        ("2025-12-02T13:00:00.250Z", NOW + 250),
    ],
)
def test_times(text: str, expected: int) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "-2x", "2h", "", "-h"])
def test_bad_times_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="ISO-8601"):
        parse_when(text, NOW)


@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        assert isinstance(parse_when(text, NOW), int)


def test_window_is_half_open_and_read_with_the_skew() -> None:
    w = Window.parse("-2h", "-1h", skew_s=30, now=NOW)
    assert w.holds(w.from_ms) and not w.holds(w.to_ms) and w.holds(w.to_ms - 1)
    assert (w.read_from, w.read_to) == (w.from_ms - 30_000, w.to_ms + 30_000)
    assert w.share_before(w.from_ms + 1_800_000) == 0.5
    assert iso(NOW) == "2025-12-02T13:00:00.000+00:00"
    with pytest.raises(ConfigError, match="empty"):
        Window.parse("-1h", "-2h", now=NOW)


def test_filters_reuse_the_path_rules() -> None:
    chosen = Selection(("get",), ("/api/*",), ("shadowtap.mirror",), ("shop",)).compiled()
    env = Envelope("GET", "/api/items/1", source="shop", meta={"route": "shadowtap.mirror"})
    assert chosen.selects(env)
    assert not chosen.selects(Envelope("POST", "/api/items/1", source="shop", meta=env.meta))
    assert not chosen.selects(Envelope("GET", "/admin", source="shop", meta=env.meta))
    assert not chosen.selects(Envelope("GET", "/api/x", source="blog", meta=env.meta))
    assert not chosen.selects(Envelope("GET", "/api/x", source="shop"))
    assert Selection().compiled().selects(Envelope("DELETE", "/anything"))
    with pytest.raises(ConfigError, match="--path"):
        Selection(paths=("^(",))
    assert Selection.from_json(Selection(("GET",)).to_json()) == Selection(("GET",))


def test_long_idle_gaps_are_cut_to_the_cap() -> None:
    times = [0, 100, 200, 60_200, 60_300, 200_300]
    warp = gap_warp(times, 1000)
    assert warp is not None
    assert [warp(t) for t in times] == [0, 100, 200, 1200, 1300, 2300]
    assert gap_warp(times, 0) is None and gap_warp([0, 10, 20], 1000) is None


def test_goals_over_the_figures() -> None:
    figures = {
        "success_rate": 0.996,
        "succeeded": 996,
        "sent": 1000,
        "coverage": 1.0,
        "window_records": 1000,
        "error_rate": 0.004,
        "time_to_first_success_s": 0.2,
        "time_to_steady_s": None,
        "requested_speed": 1.0,
        "achieved_speed": 0.95,
    }
    rows = [
        LatencySummary("*", {}, {"p99": 1.4}),
        LatencySummary("GET /a", {"target": Quantiles(1, 1, 1, 1)}, {"p99": 2.0}),
    ]
    goals = [
        parse(text)
        for text in (
            "success>=99.5%",
            "coverage>=100%",
            "p99<=1.5x",
            "*: p99<=1.5x",
            "ttfs<=1s",
            "steady<=60s",
            "speed>=0.9x",
            "error<0.5%",
        )
    ]
    results = evaluate(goals, figures, rows)
    assert [(r.goal, r.endpoint, r.passed) for r in results] == [
        ("success>=99.5%", "", True),
        ("coverage>=100%", "", True),
        ("p99<=1.5x", "", True),  # the whole window
        ("*: p99<=1.5x", "GET /a", False),
        ("ttfs<=1s", "", True),
        ("steady<=60s", "", False),  # never steady: nothing measured fails
        ("speed>=0.9x", "", True),
        ("error<0.5%", "", True),
    ]
    assert steady_goal(goals) == 0.995 and steady_goal([]) == 0.99


@pytest.mark.parametrize(
    ("text", "why"),
    [("success>=99.5", "percent"), ("p99<=150%", "ratio"), ("latency<=1x", "unknown metric")],
)
def test_bad_goals_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse(text)


def test_the_pacer_follows_the_warp_and_the_window_origin() -> None:
    from shadowtap.replayers.pacing import Pacer

    now = [50.0]
    pacer = Pacer(1.0, clock=lambda: now[0])
    pacer.warp = gap_warp([0, 1000, 61_000, 62_000], 2000)  # a 60 s gap cut to 2 s
    pacer.origin_ts = 0  # the window's first record, though another is read first
    assert pacer.delay(1000) == 1.0
    assert pacer.delay(61_000) == 3.0  # 1 s + the 2 s the gap was cut to, not 61 s
    assert pacer.delay(62_000) == 4.0
