"""Goals that pass or fail a run (a diff, a drill): ``[ENDPOINT:] METRIC OP LIMIT[UNIT]``.

One grammar for every report that gates CI; each report says which metrics it knows and
what kind each is::

    METRICS = {"success": RATE, "p99": RATIO, "ttfs": SECONDS}
    goal = parse_goal("success>=99.5%", METRICS)     # Goal(metric="success", op=">=", 0.995)
    goal.holds(0.997)                                  # True
    parse_goal("GET /users/{id}: p99<=1.5x", METRICS).endpoint   # "GET /users/{id}"

Kinds: a ``RATE`` is written in percent (``99.5%``) and kept as a fraction; a ``RATIO``
takes an optional ``x``; ``SECONDS`` an optional ``s``. Operators: ``<``, ``<=``, ``>``,
``>=`` (a report may allow fewer). ValueError says what is wrong, with an example.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

RATE = "rate"
RATIO = "ratio"
SECONDS = "seconds"
_UNITS = {RATE: "%", RATIO: "x", SECONDS: "s"}
_GOAL = re.compile(
    r"\s*(?:(?P<endpoint>[^:]+?)\s*:\s*)?(?P<metric>[a-z0-9_]+)\s*(?P<op><=|<|>=|>)\s*"
    r"(?P<limit>\d+(?:\.\d+)?)\s*(?P<unit>%|x|s)?\s*"
)


@dataclass(frozen=True, slots=True)
class Goal:
    text: str
    metric: str
    op: str
    limit: float  # a fraction for rates, a ratio, or seconds
    endpoint: str = ""  # "" the whole run, "*" every endpoint, else one endpoint

    def holds(self, value: float) -> bool:
        if self.op == "<":
            return value < self.limit
        if self.op == "<=":
            return value <= self.limit
        if self.op == ">":
            return value > self.limit
        return value >= self.limit


def parse_goal(
    text: str,
    metrics: Mapping[str, str],
    *,
    ops: Collection[str] = ("<", "<=", ">", ">="),
    example: str = "",
) -> Goal:
    """Parse one goal over ``metrics`` (name → kind); ValueError says what is wrong."""
    example = example or _example(metrics)
    match = _GOAL.fullmatch(text)
    if match is None or match["op"] not in ops:
        raise ValueError(f"goal {text!r}: expected [ENDPOINT:] METRIC<=LIMIT, e.g. {example}")
    metric, unit = match["metric"], match["unit"] or ""
    limit = float(match["limit"])
    kind = metrics.get(metric)
    if kind is None:
        known = ", ".join(metrics)
        raise ValueError(f"goal {text!r}: unknown metric {metric!r}; one of {known}")
    if kind == RATE:
        if unit != "%":
            raise ValueError(
                f"goal {text!r}: write the rate in percent, e.g. {metric}{match['op']}0.5%"
            )
        limit /= 100
    elif unit and unit != _UNITS[kind]:
        what = "a ratio" if kind == RATIO else "in seconds"
        raise ValueError(
            f"goal {text!r}: a {metric} goal is {what}, e.g. {metric}{match['op']}1.5{_UNITS[kind]}"
        )
    endpoint = (match["endpoint"] or "").strip()
    return Goal(text.strip(), metric, match["op"], limit, endpoint)


def _example(metrics: Mapping[str, str]) -> str:
    for name, kind in metrics.items():
        return f"{name}<=1{_UNITS[kind]}"
    return "metric<=1"
