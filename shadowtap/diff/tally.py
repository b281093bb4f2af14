"""Bounded counters of one comparison view: per endpoint, per field, with capped samples.

Memory does not grow with traffic (Diffy ran out of memory on random keys, diffy#59):

- at most ``Limits.endpoints`` endpoints per view; later ones count under
  ``(other endpoints)``;
- at most ``Limits.fields`` distinct fields per endpoint; differences in later ones count
  under ``(other fields)`` and the endpoint reports how many were capped;
- at most ``Limits.samples`` samples per endpoint and field, the first ones seen;
- per endpoint, the record count of each distinct set of differing fields (its signature),
  at most ``Limits.signatures`` sets: what makes the mismatch rate exact once the fields'
  verdicts are known. Records past that cap are counted as mismatched whenever the endpoint
  has a flagged field, and the rate is marked as an upper bound.

A field is counted once per record, however many places under it differed.

``View.state()`` is those counters as plain data and ``View.merge()`` adds another view's:
workers that each own some partitions publish their states, one report merges them (the caps
above still hold) and judges the merged counts once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from shadowtap.diff.compare import Comparison
from shadowtap.diff.learned import judge
from shadowtap.diff.model import Difference, Incomplete, Request
from shadowtap.diff.rules import Accepted, Thresholds, endpoint_matches
from shadowtap.diff.summary import FLAGGED, EndpointSummary, FieldSummary, Sample, ViewSummary

_T = TypeVar("_T")
OTHER_FIELDS = "(other fields)"
OTHER_ENDPOINTS = "(other endpoints)"
# An endpoint's plain counters: in its state as they are, added up by a merge.
_COUNTS = ("compared", "partial", "unpaired", "no_production", "capped", "unsigned")


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that bound a run's memory whatever the traffic."""

    samples: int = 5  # per endpoint and field
    fields: int = 200  # distinct fields per endpoint
    endpoints: int = 500  # per view
    signatures: int = 256  # distinct sets of differing fields per endpoint
    differences: int = 200  # kept per compared pair
    value_chars: int = 200  # of each value kept for display


class _Field:
    __slots__ = ("baseline", "differences", "kinds", "noise_class", "samples")

    def __init__(self) -> None:
        self.differences = 0
        self.baseline = 0
        self.noise_class = 0
        self.kinds: Counter[str] = Counter()
        self.samples: list[Sample] = []

    def state(self) -> dict[str, Any]:
        return {
            "differences": self.differences,
            "baseline": self.baseline,
            "noise_class": self.noise_class,
            "kinds": dict(self.kinds),
            "samples": [asdict(s) for s in self.samples],
        }

    def merge(self, state: Mapping[str, Any], samples: int) -> None:
        """Adds another field's counts; its samples only while fewer than ``samples``."""
        self.differences += state["differences"]
        self.baseline += state["baseline"]
        self.noise_class += state["noise_class"]
        self.kinds.update(state["kinds"])
        room = max(samples - len(self.samples), 0)
        self.samples += [Sample(**s) for s in state["samples"][:room]]


class _Endpoint:
    __slots__ = (
        "capped",
        "compared",
        "fields",
        "incomplete",
        "no_production",
        "partial",
        "signatures",
        "unpaired",
        "unsigned",
    )

    def __init__(self) -> None:
        self.compared = 0
        self.partial = 0
        self.unpaired = 0
        self.no_production = 0
        self.capped = 0
        self.unsigned = 0
        self.incomplete: Counter[str] = Counter()
        self.fields: dict[str, _Field] = {}
        self.signatures: Counter[frozenset[str]] = Counter()

    def state(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in _COUNTS},
            "incomplete": dict(self.incomplete),
            "fields": {name: stats.state() for name, stats in self.fields.items()},
            "signatures": [[sorted(sig), n] for sig, n in self.signatures.items()],
        }


class View:
    """Counters of one view: ``regression`` or ``drift:<target>``."""

    def __init__(
        self, name: str, label: str, first: str, second: str, *, learned: bool, limits: Limits
    ) -> None:
        self.name, self.label, self.first, self.second = name, label, first, second
        self.learned = learned
        self.limits = limits
        self._endpoints: dict[str, _Endpoint] = {}
        self._capped_records = 0

    def compared(
        self,
        endpoint: str,
        request: Request,
        comparison: Comparison,
        noise: Comparison | None = None,
    ) -> list[tuple[str, Sample]]:
        """Count a compared record; returns the ``(field, sample)`` pairs newly sampled."""
        ep = self._endpoint(endpoint)
        ep.compared += 1
        ep.partial += comparison.partial
        sampled: list[tuple[str, Sample]] = []
        real: set[str] = set()
        for name, difference, is_real in _by_field(comparison.differences):
            key, stats = self._field(ep, name)
            if is_real:
                stats.differences += 1
                stats.kinds[difference.kind.value] += 1
                real.add(key)
            else:
                stats.noise_class += 1
            if len(stats.samples) < self.limits.samples:
                sample = _sample(request, difference)
                stats.samples.append(sample)
                sampled.append((key, sample))
        if noise is not None:
            for name, _, is_real in _by_field(noise.differences):
                if is_real:
                    self._field(ep, name)[1].baseline += 1
        if real:
            self._sign(ep, frozenset(real), 1)
        return sampled

    def incomplete(self, endpoint: str, reason: Incomplete) -> None:
        self._endpoint(endpoint).incomplete[reason.value] += 1

    def unpaired(self, endpoint: str) -> None:
        self._endpoint(endpoint).unpaired += 1

    def no_production(self, endpoint: str) -> None:
        self._endpoint(endpoint).no_production += 1

    def state(self) -> dict[str, Any]:
        """The raw counters, JSON-ready and bounded by ``limits``: what ``merge`` adds."""
        return {
            "name": self.name,
            "label": self.label,
            "first": self.first,
            "second": self.second,
            "learned": self.learned,
            "capped": self._capped_records,
            "endpoints": {key: ep.state() for key, ep in self._endpoints.items()},
        }

    def merge(self, state: Mapping[str, Any]) -> None:
        """Adds another view's ``state()``. Its endpoints, fields and signatures past this
        view's caps are counted the way ``compared`` counts them, as if its records had
        come here after this view's."""
        self._capped_records += state["capped"]
        for key, other in state["endpoints"].items():
            records = other["compared"] + other["unpaired"] + other["no_production"]
            ep = self._endpoint(key, records + sum(other["incomplete"].values()))
            for name in _COUNTS:
                setattr(ep, name, getattr(ep, name) + other[name])
            ep.incomplete.update(other["incomplete"])
            names: dict[str, str] = {}  # its field names to ours ((other fields) past the cap)
            for name, stats in other["fields"].items():
                seen = stats["differences"] + stats["noise_class"] + stats["baseline"]
                names[name], mine = self._field(ep, name, seen)
                mine.merge(stats, self.limits.samples)
            for fields, n in other["signatures"]:
                self._sign(ep, frozenset(names[f] for f in fields), n)

    def summarize(self, accepted: Sequence[Accepted], thresholds: Thresholds) -> ViewSummary:
        target = self.second
        endpoints = []
        for key, ep in self._endpoints.items():
            mine = [
                a
                for a in accepted
                if a.target in ("", target) and endpoint_matches(a.endpoint, key)
            ]
            endpoints.append(self._endpoint_summary(key, ep, mine, thresholds))
        endpoints.sort(key=lambda e: (-e.mismatch_rate, -e.compared, e.endpoint))
        return ViewSummary(
            self.name,
            self.label,
            self.first,
            self.second,
            self.learned,
            tuple(endpoints),
            self._capped_records,
        )

    def _endpoint_summary(
        self, key: str, ep: _Endpoint, accepted: Sequence[Accepted], thresholds: Thresholds
    ) -> EndpointSummary:
        fields = [
            self._field_summary(name, stats, ep.compared, accepted, thresholds)
            for name, stats in ep.fields.items()
        ]
        fields.sort(
            key=lambda f: (f.verdict not in FLAGGED, -f.differences, -f.noise_class, f.field)
        )
        flagged = {f.field for f in fields if f.verdict in FLAGGED}
        mismatched = sum(n for sig, n in ep.signatures.items() if sig & flagged)
        if flagged:
            mismatched += ep.unsigned
        return EndpointSummary(
            endpoint=key,
            compared=ep.compared,
            mismatched=mismatched,
            mismatch_rate=mismatched / ep.compared if ep.compared else 0.0,
            mismatch_exact=not (flagged and ep.unsigned),
            partial=ep.partial,
            unpaired=ep.unpaired,
            no_production=ep.no_production,
            incomplete=dict(ep.incomplete),
            fields=tuple(fields),
            fields_capped=ep.capped,
        )

    def _field_summary(
        self,
        name: str,
        stats: _Field,
        compared: int,
        accepted: Sequence[Accepted],
        thresholds: Thresholds,
    ) -> FieldSummary:
        verdict_of = judge(
            stats.differences,
            stats.baseline,
            compared,
            relative=thresholds.relative,
            absolute=thresholds.absolute,
        )
        if not stats.differences:
            verdict = "noise-class" if stats.noise_class else "noise"
        elif any(_accepts(a, name, stats.kinds) for a in accepted):
            verdict = "accepted"
        elif not self.learned:
            verdict = "difference"
        else:
            verdict = "regression" if verdict_of.regression else "noise"
        return FieldSummary(
            field=name,
            verdict=verdict,
            differences=stats.differences,
            baseline_differences=stats.baseline,
            noise_class=stats.noise_class,
            relative=round(verdict_of.relative, 3),
            absolute=round(verdict_of.absolute, 4),
            kinds=dict(stats.kinds),
            samples=tuple(stats.samples),
        )

    def _endpoint(self, key: str, records: int = 1) -> _Endpoint:
        _, ep, capped = _capped(
            self._endpoints, key, self.limits.endpoints, OTHER_ENDPOINTS, _Endpoint
        )
        self._capped_records += capped * records
        return ep

    def _field(self, ep: _Endpoint, name: str, seen: int = 1) -> tuple[str, _Field]:
        """The field's counters (or ``(other fields)``'s); ``seen``: times it is counted."""
        name, stats, capped = _capped(ep.fields, name, self.limits.fields, OTHER_FIELDS, _Field)
        ep.capped += capped * seen
        return name, stats

    def _sign(self, ep: _Endpoint, signature: frozenset[str], records: int) -> None:
        if signature in ep.signatures or len(ep.signatures) < self.limits.signatures:
            ep.signatures[signature] += records
        else:
            ep.unsigned += records


def _capped(
    table: dict[str, _T], key: str, limit: int, overflow: str, make: Callable[[], _T]
) -> tuple[str, _T, bool]:
    """``table[key]``, made if need be; past ``limit`` keys, the ``overflow`` entry instead.
    ``key`` may be ``overflow`` itself (a merged state's), which is not capped again."""
    found = table.get(key)
    if found is not None:
        return key, found, False
    capped = len(table) >= limit and key != overflow
    if capped:
        key = overflow
        found = table.get(key)
    if found is None:
        found = table[key] = make()
    return key, found, capped


def _by_field(differences: Sequence[Difference]) -> list[tuple[str, Difference, bool]]:
    """``(field, first difference, any real)`` for each field, in order of appearance."""
    seen: dict[str, tuple[Difference, bool]] = {}
    for d in differences:
        found = seen.get(d.field)
        if found is None:
            seen[d.field] = (d, not d.noise)
        elif not found[1] and not d.noise:
            seen[d.field] = (d, True)  # a real difference is the better example
    return [(name, d, real) for name, (d, real) in seen.items()]


def _accepts(accepted: Accepted, name: str, kinds: Counter[str]) -> bool:
    if accepted.field != name:
        return False
    return not accepted.kind or set(kinds) <= {accepted.kind}


def _sample(request: Request, d: Difference) -> Sample:
    return Sample(
        request.id, request.method, request.path, d.where, d.kind.value, d.a, d.b, d.noise
    )
