"""The summary of a diff run: what the HTML report, JUnit XML and goals are made from.

Plain frozen dataclasses, serialisable to JSON (``to_json``) and back (``from_json``), so a
report can be written from a summary saved by another process. A summary holds counts and
capped samples only; its size does not grow with the traffic.

Views: ``regression`` compares the candidate with the first baseline (three-way: with noise
learned from the two baselines); ``drift:<target>`` compares production's recorded response
with a target's ("data drift": staging data differs from production's, so these are
reported separately and never mixed into regressions).

Field verdicts: ``regression`` (three-way, beyond the learned noise), ``difference``
(two-way, any real difference), ``noise`` (learned: within what the baselines differ by),
``noise-class`` (only values of one class differed), ``accepted`` (in the rules' accept list).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as default
from typing import Any

import orjson

from shadowtap.configload import build
from shadowtap.errors import ConfigError

VERSION = 1
FLAGGED = frozenset({"regression", "difference"})


@dataclass(frozen=True, slots=True)
class Sample:
    """One example of a difference, values side by side."""

    id: str
    method: str
    path: str
    where: str
    kind: str
    a: Any = None
    b: Any = None
    noise: str = ""


@dataclass(frozen=True, slots=True)
class FieldSummary:
    field: str
    verdict: str
    differences: int = 0  # records where it really differed (candidate vs baseline, ...)
    baseline_differences: int = 0  # records where the two baselines differed (three-way)
    noise_class: int = 0  # records where only values of one class differed
    relative: float = 0.0  # Diffy's relative difference, percent
    absolute: float = 0.0  # |differences - baseline_differences| / compared, percent
    kinds: dict[str, int] = default(default_factory=dict)
    samples: tuple[Sample, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    endpoint: str
    compared: int = 0
    mismatched: int = 0  # compared records with a difference in a flagged field
    mismatch_rate: float = 0.0  # mismatched / compared
    mismatch_exact: bool = True  # False: an upper bound (difference signatures were capped)
    partial: int = 0  # compared records with a cut body
    unpaired: int = 0
    no_production: int = 0
    incomplete: dict[str, int] = default(default_factory=dict)
    fields: tuple[FieldSummary, ...] = ()
    fields_capped: int = 0  # differences counted under "(other fields)" past the cap


@dataclass(frozen=True, slots=True)
class ViewSummary:
    name: str
    label: str
    first: str  # the side compared against (baseline, production)
    second: str  # the side compared (candidate, a target)
    learned: bool = False  # three-way: noise learned from two baselines
    endpoints: tuple[EndpointSummary, ...] = ()
    endpoints_capped: int = 0  # records counted under "(other endpoints)" past the cap


@dataclass(frozen=True, slots=True)
class Quantiles:
    count: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Per endpoint: each side's quantiles (ms); ratios only between replayer-measured sides."""

    endpoint: str
    sides: dict[str, Quantiles] = default(default_factory=dict)
    ratios: dict[str, float] = default(default_factory=dict)  # candidate / baseline
    noise_ratios: dict[str, float] = default(default_factory=dict)  # secondary / baseline


@dataclass(frozen=True, slots=True)
class GoalResult:
    goal: str
    endpoint: str
    passed: bool
    value: float | None
    limit: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Totals:
    records: int = 0
    compared: int = 0
    unpaired: int = 0
    no_production: int = 0
    partial: int = 0
    incomplete: dict[str, int] = default(default_factory=dict)
    redeliveries: dict[str, int] = default(default_factory=dict)
    waiting: int = 0  # records still waiting for a target's result (``diff serve``)


@dataclass(frozen=True, slots=True)
class Summary:
    mode: str  # "three-way", "two-way" (candidate vs baseline) or "drift" (production only)
    roles: dict[str, str] = default(default_factory=dict)  # baseline/secondary/candidate → target
    totals: Totals = default(default_factory=Totals)
    views: tuple[ViewSummary, ...] = ()
    latency: tuple[LatencySummary, ...] = ()
    statuses: dict[str, dict[str, dict[str, int]]] = default(default_factory=dict)
    thresholds: dict[str, float] = default(default_factory=dict)
    goals: tuple[GoalResult, ...] = ()
    version: int = VERSION

    @property
    def passed(self) -> bool:
        """True when every goal passed (and there was at least one)."""
        return bool(self.goals) and all(g.passed for g in self.goals)

    def view(self, name: str) -> ViewSummary | None:
        return next((v for v in self.views if v.name == name), None)


def to_json(summary: Summary) -> bytes:
    return orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2)


def from_json(data: bytes | str) -> Summary:
    """Read a summary written by ``to_json``; ConfigError when it is not one."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"not a diff summary: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        raise ConfigError(f"not a version {VERSION} diff summary")
    summary: Summary = build(Summary, raw)
    return summary
