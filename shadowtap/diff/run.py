"""A diff run: records in, a summary out. The pure core the ``shadowtap diff`` agent drives.

::

    run = DiffRun(load_rules("diff-rules.toml"), Roles("v1-a", "v2", secondary="v1-b"))
    for record in records:               # from shadowtap.diff.pairing
        for mismatch in run.add(record):
            ...                          # sampled differences for shadowtap.diffs
    summary = run.summary(goals=[fail_above("0.5%")], redeliveries=pairing.redeliveries)

Views of each record:

- ``regression`` (with roles): candidate vs baseline. With a secondary baseline the run is
  three-way: baseline vs secondary is compared too, and what differs there is noise
  (shadowtap.diff.learned). A record lacking one of the roles' results is unpaired; one
  whose request or any role's response is incomplete is counted apart, never diffed.
- ``drift:<target>`` (``drift=True``): production's recorded response vs each target's.
  Records without a production response (``shadowtap collect``) count as no-production.

Latency: each side's duration per endpoint, production's beside the targets' (labelled, not
in any ratio). Statuses: per side, method × status family.

Several processes (each owning some partitions of the results) each keep a run; ``state()``
is a run's raw counts as plain data, bounded by its Limits, and ``merge`` (or ``merged``)
adds them up, so one summary is judged on everyone's counts::

    run = DiffRun.merged(states, rules, roles)   # states: each worker's run.state()
    summary = run.summary()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shadowtap.diff.compare import Comparison, Differ
from shadowtap.diff.endpoints import Endpoints
from shadowtap.diff.goals import Goal, evaluate, parse_goal
from shadowtap.diff.latency import PRODUCTION, LatencyBook
from shadowtap.diff.model import Record
from shadowtap.diff.rules import Rules
from shadowtap.diff.summary import Sample, Summary, Totals
from shadowtap.diff.tally import Limits, View
from shadowtap.errors import ConfigError

REGRESSION = "regression"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Roles:
    """Target names: candidate compared with baseline; a secondary baseline for three-way."""

    baseline: str
    candidate: str
    secondary: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.baseline, self.secondary, self.candidate) if n)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A sampled difference for ``shadowtap.diffs``: at most Limits.samples per endpoint and
    field and view, values already shortened (and, in the pipeline, already scrubbed)."""

    view: str
    endpoint: str
    field: str
    sample: Sample


class DiffRun:
    """Counts and compares records; bounded memory (shadowtap.diff.tally.Limits)."""

    def __init__(
        self,
        rules: Rules | None = None,
        roles: Roles | None = None,
        limits: Limits | None = None,
        *,
        drift: bool = True,
    ) -> None:
        self.rules = rules or Rules()
        self.roles = roles
        self.limits = limits or Limits()
        self.drift = drift
        self._differ = Differ(
            self.rules, limit=self.limits.differences, chars=self.limits.value_chars
        )
        self._endpoints = Endpoints(
            self.rules.templates, learn_templates=self.rules.learn_templates
        )
        self._latency = LatencyBook(self.limits.endpoints)
        self._views: dict[str, View] = {}
        self._statuses: dict[str, Counter[tuple[str, str]]] = {}
        self._records = 0
        # Per record, not per view: in the primary view (regression with roles, else drift).
        self._totals = {"compared": 0, "unpaired": 0, "no_production": 0, "partial": 0}
        self._incomplete: Counter[str] = Counter()
        if roles is not None:
            three_way = bool(roles.secondary)
            label = f"{roles.candidate} vs {roles.baseline}" + (
                f" (noise learned from {roles.secondary} vs {roles.baseline})" if three_way else ""
            )
            self._views[REGRESSION] = View(
                REGRESSION,
                label,
                roles.baseline,
                roles.candidate,
                learned=three_way,
                limits=self.limits,
            )

    def add(self, record: Record) -> list[Mismatch]:
        """Compare one record in every view; returns the newly sampled mismatches."""
        self._records += 1
        request = record.request
        endpoint = self._endpoints.key(request.method, request.path)
        self._count_sides(endpoint, record)
        if record.production is None:
            self._totals["no_production"] += 1
        sides = [*record.sides.values(), *([record.production] if record.production else [])]
        reason = request.incomplete or next((s.missing for s in sides if s.missing), None)
        if reason is not None:
            self._incomplete[reason.value] += 1
        sampled: list[Mismatch] = []
        compared: list[Comparison] = []
        if self.roles is not None:
            self._regression(endpoint, record, self.roles, compared, sampled)
        if self.drift:
            # Without roles the drift views are the primary comparison of the record.
            drifted: list[Comparison] = compared if self.roles is None else []
            for target in record.sides:
                self._drift(endpoint, record, target, drifted, sampled)
        if compared:
            self._totals["compared"] += 1
            self._totals["partial"] += any(c.partial for c in compared)
        return sampled

    def state(self) -> dict[str, Any]:
        """Every raw count ``summary`` judges, as plain data (JSON-ready) bounded by Limits:
        what another process's run adds with ``merge``."""
        return {
            "version": STATE_VERSION,
            "roles": _role_map(self.roles),
            "drift": self.drift,
            "records": self._records,
            "totals": dict(self._totals),
            "incomplete": dict(self._incomplete),
            "statuses": {side: _nest(counts) for side, counts in self._statuses.items()},
            "views": [view.state() for view in self._views.values()],
            "latency": self._latency.state(),
        }

    def merge(self, state: Mapping[str, Any]) -> None:
        """Adds another run's ``state()``, as if its records had come after this run's (every
        cap holds). ConfigError when it is a run of other roles, drift or state version."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"not a version {STATE_VERSION} diff state (version {state.get('version')!r})"
            )
        ours = {"roles": _role_map(self.roles), "drift": self.drift}
        theirs = {"roles": state.get("roles"), "drift": state.get("drift")}
        if theirs != ours:
            raise ConfigError(
                f"cannot merge the diff state of a run with {theirs} into a run with {ours}: "
                "every worker of a diff runs with the same roles and drift setting"
            )
        self._records += state["records"]
        for name, n in state["totals"].items():
            self._totals[name] += n
        self._incomplete.update(state["incomplete"])
        for side, methods in state["statuses"].items():
            counts = self._statuses.setdefault(side, Counter())
            for method, families in methods.items():
                for family, n in families.items():
                    counts[(method, family)] += n
        for raw in state["views"]:  # regression is there already: the roles are the same
            view = self._views.get(raw["name"]) or self._drift_view(raw["second"])
            view.merge(raw)
        self._latency.merge(state["latency"])

    @classmethod
    def merged(
        cls,
        states: Iterable[Mapping[str, Any]],
        rules: Rules | None = None,
        roles: Roles | None = None,
        limits: Limits | None = None,
        *,
        drift: bool = True,
    ) -> DiffRun:
        """A run of no records of its own with ``states`` merged, in order."""
        run = cls(rules, roles, limits, drift=drift)
        for state in states:
            run.merge(state)
        return run

    def summary(
        self,
        goals: Sequence[Goal | str] = (),
        redeliveries: Mapping[str, int] | None = None,
        waiting: int = 0,
    ) -> Summary:
        """The run so far; goals from the rules file are evaluated with the ones given.
        ``redeliveries`` and ``waiting`` (records still waiting for a target) are the
        pairing's, which the run does not see."""
        thresholds = self.rules.thresholds
        views = tuple(v.summarize(self.rules.accept, thresholds) for v in self._views.values())
        roles = self.roles
        summary = Summary(
            mode=_mode(roles),
            roles=_role_map(roles),
            totals=Totals(
                records=self._records,
                incomplete=dict(self._incomplete),
                redeliveries=dict(redeliveries or {}),
                waiting=waiting,
                **self._totals,
            ),
            views=views,
            latency=self._latency.summarize(
                roles.baseline if roles else "",
                roles.candidate if roles else "",
                roles.secondary if roles else "",
            ),
            statuses={side: _nest(counts) for side, counts in sorted(self._statuses.items())},
            thresholds={"relative": thresholds.relative, "absolute": thresholds.absolute},
        )
        wanted = [parse_goal(g) for g in self.rules.goals]
        wanted += [parse_goal(g) if isinstance(g, str) else g for g in goals]
        if not wanted:
            return summary
        return replace(summary, goals=evaluate(wanted, summary))

    def _regression(
        self,
        endpoint: str,
        record: Record,
        roles: Roles,
        compared: list[Comparison],
        sampled: list[Mismatch],
    ) -> None:
        view = self._views[REGRESSION]
        sides = [record.sides.get(name) for name in roles.names]
        present = [s for s in sides if s is not None]
        if len(present) < len(sides):
            view.unpaired(endpoint)
            self._totals["unpaired"] += 1
            return
        reason = record.request.incomplete or next((s.missing for s in present if s.missing), None)
        if reason is not None:
            view.incomplete(endpoint, reason)
            return
        baseline, candidate = record.sides[roles.baseline], record.sides[roles.candidate]
        comparison = self._differ.compare(baseline, candidate, endpoint, roles.candidate)
        noise = None
        if roles.secondary:
            secondary = record.sides[roles.secondary]
            noise = self._differ.compare(baseline, secondary, endpoint, roles.secondary)
        compared.append(comparison)
        for field, sample in view.compared(endpoint, record.request, comparison, noise):
            sampled.append(Mismatch(view.name, endpoint, field, sample))

    def _drift(
        self,
        endpoint: str,
        record: Record,
        target: str,
        compared: list[Comparison],
        sampled: list[Mismatch],
    ) -> None:
        side = record.sides[target]
        view = self._drift_view(target)
        production = record.production
        if production is None:
            view.no_production(endpoint)
            return
        reason = record.request.incomplete or production.missing or side.missing
        if reason is not None:
            view.incomplete(endpoint, reason)
            return
        comparison = self._differ.compare(production, side, endpoint, target)
        compared.append(comparison)
        for field, sample in view.compared(endpoint, record.request, comparison):
            sampled.append(Mismatch(view.name, endpoint, field, sample))

    def _drift_view(self, target: str) -> View:
        name = f"drift:{target}"
        view = self._views.get(name)
        if view is None:
            label = f"data drift: production vs {target}"
            view = self._views[name] = View(
                name, label, PRODUCTION, target, learned=False, limits=self.limits
            )
        return view

    def _count_sides(self, endpoint: str, record: Record) -> None:
        method = record.request.method
        sides = dict(record.sides)
        if record.production is not None:
            sides[PRODUCTION] = record.production
        for name, side in sides.items():
            family = "error" if side.status is None else f"{side.status // 100}xx"
            self._statuses.setdefault(name, Counter())[(method, family)] += 1
            if side.missing is None and record.request.incomplete is None:
                self._latency.add(endpoint, name, side.duration_ms)


def _role_map(roles: Roles | None) -> dict[str, str]:
    if roles is None:
        return {}
    names = {"baseline": roles.baseline, "secondary": roles.secondary, "candidate": roles.candidate}
    return {role: name for role, name in names.items() if name}


def _mode(roles: Roles | None) -> str:
    if roles is None:
        return "drift"
    return "three-way" if roles.secondary else "two-way"


def _nest(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (method, family), n in sorted(counts.items()):
        out.setdefault(method, {})[family] = n
    return out
