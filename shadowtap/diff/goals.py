"""Goals that pass or fail a diff run, so CI can gate a deployment on it.

A goal is ``[ENDPOINT:] METRIC OP LIMIT``::

    mismatch<=0.5%                 the whole run: records with a flagged difference
    GET /users/{id}: mismatch<1%   one endpoint
    *: mismatch<=2%                every endpoint, one result each
    p99<=1.5x                      latency: candidate / baseline, every endpoint
    drift<=5%   unpaired<=1%   incomplete<=1%

Metrics: ``mismatch`` (the regression view; in a production-only run the worst drift view),
``drift`` (the worst production-vs-target view), ``unpaired`` and ``incomplete`` (share of
records), ``p50``/``p95``/``p99`` (candidate/baseline latency ratio, per endpoint: there is
no run-wide ratio). Rates are written with ``%``; ratios take an optional ``x``.
``--fail-above 0.5%`` is ``mismatch<=0.5%``. A goal with nothing to measure fails: an empty
run must not open the gate.
"""

from __future__ import annotations

from collections.abc import Sequence

from shadowtap.diff.summary import EndpointSummary, GoalResult, Summary, ViewSummary
from shadowtap.goals import RATE, RATIO, Goal
from shadowtap.goals import parse_goal as parse

RATES = ("mismatch", "drift", "unpaired", "incomplete")
LATENCIES = ("p50", "p95", "p99")
_METRICS = {**dict.fromkeys(RATES, RATE), **dict.fromkeys(LATENCIES, RATIO)}

__all__ = ["Goal", "evaluate", "exit_code", "fail_above", "parse_goal"]


def parse_goal(text: str) -> Goal:
    """Parse one goal (shadowtap.goals' grammar, at most: ``<=`` or ``<``); ValueError says
    what is wrong."""
    return parse(text, _METRICS, ops=("<", "<="), example="mismatch<=0.5%")


def fail_above(rate: str) -> Goal:
    """``--fail-above 0.5%``: the run fails when more than that share of records mismatch."""
    return parse_goal(f"mismatch<={rate.strip()}")


def evaluate(goals: Sequence[Goal], summary: Summary) -> tuple[GoalResult, ...]:
    """One result per goal, or per endpoint for goals over every endpoint."""
    results: list[GoalResult] = []
    for goal in goals:
        if goal.metric in LATENCIES:
            results.extend(_latency(goal, summary))
        else:
            results.extend(_rate(goal, summary))
    return tuple(results)


def exit_code(results: Sequence[GoalResult]) -> int:
    """0 when every goal passed, 1 when one failed."""
    return 0 if all(r.passed for r in results) else 1


def _result(goal: Goal, endpoint: str, value: float | None, detail: str) -> GoalResult:
    passed = value is not None and goal.holds(value)
    return GoalResult(goal.text, endpoint, passed, value, goal.limit, detail)


def _rate(goal: Goal, summary: Summary) -> list[GoalResult]:
    views = _views(goal.metric, summary)
    if goal.endpoint == "*":
        names = sorted({e.endpoint for v in views for e in v.endpoints})
        return [_rate_of(goal, views, name) for name in names] or [
            _result(goal, "*", None, "no endpoint was compared")
        ]
    return [_rate_of(goal, views, goal.endpoint)]


def _rate_of(goal: Goal, views: list[ViewSummary], endpoint: str) -> GoalResult:
    worst: tuple[float, str] | None = None
    for view in views:
        chosen = [e for e in view.endpoints if not endpoint or e.endpoint == endpoint]
        measured = _measure(goal.metric, chosen)
        if measured is not None and (worst is None or measured[0] > worst[0]):
            worst = (measured[0], f"{view.label}: {measured[1]}")
    if worst is None:
        return _result(goal, endpoint, None, "nothing to measure: no records")
    return _result(goal, endpoint, worst[0], worst[1])


def _measure(metric: str, endpoints: list[EndpointSummary]) -> tuple[float, str] | None:
    if metric in ("mismatch", "drift"):
        compared = sum(e.compared for e in endpoints)
        mismatched = sum(e.mismatched for e in endpoints)
        exact = all(e.mismatch_exact for e in endpoints)
        if not compared:
            return None
        bound = "" if exact else " (upper bound)"
        return mismatched / compared, f"{mismatched} of {compared} compared records{bound}"
    if metric == "unpaired":
        part = sum(e.unpaired for e in endpoints)
    else:
        part = sum(sum(e.incomplete.values()) for e in endpoints)
    total = sum(e.compared + e.unpaired + sum(e.incomplete.values()) for e in endpoints)
    if not total:
        return None
    return part / total, f"{part} of {total} records"


def _views(metric: str, summary: Summary) -> list[ViewSummary]:
    drift = [v for v in summary.views if v.name.startswith("drift:")]
    if metric == "drift":
        return drift
    regression = summary.view("regression")
    return [regression] if regression is not None else drift


def _latency(goal: Goal, summary: Summary) -> list[GoalResult]:
    rows = [
        row
        for row in summary.latency
        if goal.endpoint in ("", "*") or row.endpoint == goal.endpoint
    ]
    results = []
    for row in rows:
        ratio = row.ratios.get(goal.metric)
        detail = "candidate / baseline" if ratio is not None else "no latency ratio measured"
        results.append(_result(goal, row.endpoint, ratio, detail))
    return results or [_result(goal, goal.endpoint or "*", None, "no latency ratio measured")]
