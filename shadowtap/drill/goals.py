"""A drill's goals (shadowtap.goals' grammar), which set its pass/fail and exit code::

    success>=99.5%     answers below 500, of the requests sent
    error<=0.5%        the rest
    coverage>=100%     requests sent, of the window's records
    p99<=1.5x          target / recorded production latency, the whole window
    GET /orders/{id}: p95<=2x     one endpoint;  *: p99<=2x  every endpoint
    ttfs<=30s          time to the first success
    steady<=120s       time to steady state (success at the goal for ``steady_s``)
    speed>=0.9x        achieved / requested speed (at 1x or Nx)

A goal with nothing to measure fails: an empty drill must not pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shadowtap.diff.summary import GoalResult, LatencySummary
from shadowtap.drill.plan import ALL
from shadowtap.goals import RATE, RATIO, SECONDS, Goal, parse_goal

METRICS = {
    "success": RATE,
    "error": RATE,
    "coverage": RATE,
    "p50": RATIO,
    "p95": RATIO,
    "p99": RATIO,
    "ttfs": SECONDS,
    "steady": SECONDS,
    "speed": RATIO,
}
_FIGURE = {
    "success": "success_rate",
    "error": "error_rate",
    "coverage": "coverage",
    "ttfs": "time_to_first_success_s",
    "steady": "time_to_steady_s",
}


def parse(text: str) -> Goal:
    return parse_goal(text, METRICS, example="success>=99.5%")


def steady_goal(goals: Sequence[Goal], default: float = 0.99) -> float:
    """The success rate steady state is measured against: the first success goal's."""
    return next((g.limit for g in goals if g.metric == "success" and not g.endpoint), default)


def evaluate(
    goals: Sequence[Goal], figures: dict[str, Any], latency: Sequence[LatencySummary]
) -> list[GoalResult]:
    results: list[GoalResult] = []
    for goal in goals:
        if goal.metric in ("p50", "p95", "p99"):
            results.extend(_latency(goal, latency))
        elif goal.metric == "speed":
            requested, achieved = figures.get("requested_speed"), figures.get("achieved_speed")
            value = achieved / requested if requested and achieved is not None else None
            detail = (
                "speed max: nothing requested to compare with"
                if not requested
                else f"achieved {achieved or 0:.3g}x of {requested:g}x"
            )
            results.append(_result(goal, "", value, detail))
        else:
            value = figures.get(_FIGURE[goal.metric])
            results.append(_result(goal, goal.endpoint, value, _detail(goal.metric, figures)))
    return results


def _detail(metric: str, figures: dict[str, Any]) -> str:
    if metric in ("success", "error"):
        return f"{figures.get('succeeded', 0)} of {figures.get('sent', 0)} requests succeeded"
    if metric == "coverage":
        return f"{figures.get('sent', 0)} of {figures.get('window_records', 0)} records sent"
    return "seconds from the first request"


def _latency(goal: Goal, rows: Sequence[LatencySummary]) -> list[GoalResult]:
    """No endpoint: the whole window (the ``*`` row); ``*``: every endpoint, one result each."""
    if goal.endpoint == "*":
        chosen = [r for r in rows if r.endpoint != ALL]
    else:
        chosen = [r for r in rows if r.endpoint == (goal.endpoint or ALL)]
    out = []
    for row in chosen:
        ratio = row.ratios.get(goal.metric)
        detail = "target / recorded production" if ratio is not None else "no ratio measured"
        out.append(_result(goal, goal.endpoint and row.endpoint, ratio, detail))
    return out or [_result(goal, goal.endpoint, None, "no latency measured on both sides")]


def _result(goal: Goal, endpoint: str, value: float | None, detail: str) -> GoalResult:
    passed = value is not None and goal.holds(value)
    return GoalResult(goal.text, endpoint, passed, value, goal.limit, detail)
