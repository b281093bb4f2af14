"""Goals: parsed strictly, evaluated per run or endpoint, and an empty run never passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowtap.diff.goals import evaluate, exit_code, fail_above, parse_goal
from shadowtap.diff.model import Record, Request
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.summary import Summary
from tests.unit.diff.sides import json_side, rules


def test_parse() -> None:
    g = parse_goal("GET /users/{id}: mismatch < 1.5 %")
    assert (g.endpoint, g.metric, g.op, g.limit) == ("GET /users/{id}", "mismatch", "<", 0.015)
    assert parse_goal("p99<=1.5x").limit == 1.5 and parse_goal("p95<=2").limit == 2
    assert fail_above("0.5%") == parse_goal("mismatch<=0.5%")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mismatch<=0.5", "percent"),
        ("p99<=150%", "ratio"),
        ("speed<=1x", "unknown metric"),
        ("mismatch", "expected"),
    ],
)
def test_parse_errors(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_goal(text)


def _summary() -> Summary:
    run = DiffRun(rules(), Roles("a", "b"), drift=False)
    for i in range(200):
        bad = i < 2 and True
        run.add(
            Record(
                Request(str(i), "GET", "/x" if i % 2 else "/y"),
                {
                    "a": json_side({"v": 1}, duration_ms=10),
                    "b": json_side({"v": 2 if bad else 1}, duration_ms=12),
                },
            )
        )
    return run.summary()


def test_rates_over_the_run_and_per_endpoint() -> None:
    summary = _summary()
    results = evaluate(
        [fail_above("1%"), fail_above("0.5%"), parse_goal("*: mismatch<=0.5%")], summary
    )
    assert [(r.goal, r.endpoint, r.passed) for r in results] == [
        ("mismatch<=1%", "", True),
        ("mismatch<=0.5%", "", False),
        ("*: mismatch<=0.5%", "GET /x", False),
        ("*: mismatch<=0.5%", "GET /y", False),
    ]
    assert results[0].value == 0.01 and "2 of 200" in results[0].detail
    assert exit_code(results[:1]) == 0 and exit_code(results) == 1


def test_latency_ratios_per_endpoint() -> None:
    results = evaluate([parse_goal("p50<=1.1x"), parse_goal("GET /x: p99<=1.3x")], _summary())
    assert [(r.endpoint, r.passed) for r in results] == [
        ("GET /x", False),
        ("GET /y", False),
        ("GET /x", True),
    ]


def test_nothing_measured_fails() -> None:
    empty = DiffRun(rules(), Roles("a", "b")).summary()
    for goal in (
        "mismatch<=1%",
        "p99<=2x",
        "GET /nope: mismatch<=1%",
        "*: mismatch<=1%",
        "drift<=1%",
    ):
        (result,) = evaluate([parse_goal(goal)], empty)
        assert not result.passed and result.value is None, goal


@given(st.text(max_size=40))
def test_any_text_is_a_goal_or_says_why(text: str) -> None:
    try:
        goal = parse_goal(text)
    except ValueError as exc:
        assert "goal" in str(exc)
    else:
        assert goal.limit >= 0 and goal.op in ("<", "<=")
