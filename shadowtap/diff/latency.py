"""Latency per endpoint and side, in bounded-memory quantile sketches (DDSketch).

Each sketch keeps at most a fixed number of logarithmic bins (quantiles within 1 % of the
true value), whatever the number of requests, and sketches merge exactly (bin counts add),
so the books of workers that each own some partitions combine (``state``, ``merge``) into
the quantiles one process would have computed. The candidate/baseline ratios compare sides
measured the same way: both by the replayer, under the same pacing. Production's recorded
duration is measured inside the production server: it is kept beside them, labelled, and
never part of a ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ddsketch import DDSketch
from ddsketch.store import DenseStore, Store

from shadowtap.diff.summary import LatencySummary, Quantiles

PRODUCTION = "production"
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_ACCURACY = 0.01


class LatencyBook:
    """Sketches per endpoint and side; at most ``max_endpoints`` endpoints are kept."""

    def __init__(self, max_endpoints: int = 500) -> None:
        self._max = max_endpoints
        self._sketches: dict[str, dict[str, DDSketch]] = {}

    def add(self, endpoint: str, side: str, duration_ms: float) -> None:
        sides = self._sides(endpoint)
        if sides is None:
            return
        sketch = sides.get(side)
        if sketch is None:
            sketch = sides[side] = DDSketch(relative_accuracy=_ACCURACY)
        sketch.add(max(duration_ms, 0.0))

    def state(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every sketch as plain data, per endpoint and side: what ``merge`` adds."""
        return {
            endpoint: {side: _dump_sketch(sketch) for side, sketch in sides.items()}
            for endpoint, sides in self._sketches.items()
        }

    def merge(self, state: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """Adds another book's ``state()``; its endpoints past the cap are left out, as in
        ``add``."""
        for endpoint, others in state.items():
            sides = self._sides(endpoint)
            if sides is None:
                continue
            for side, data in others.items():
                sketch = _load_sketch(data)
                mine = sides.get(side)
                if mine is None:
                    sides[side] = sketch
                else:
                    mine.merge(sketch)

    def summarize(
        self, baseline: str = "", candidate: str = "", secondary: str = ""
    ) -> tuple[LatencySummary, ...]:
        """Quantiles of every side; ratios candidate/baseline (and secondary/baseline)."""
        rows = []
        for endpoint in sorted(self._sketches):
            sides = {name: _quantiles(s) for name, s in sorted(self._sketches[endpoint].items())}
            rows.append(
                LatencySummary(
                    endpoint,
                    sides,
                    _ratios(sides.get(candidate), sides.get(baseline)),
                    _ratios(sides.get(secondary), sides.get(baseline)),
                )
            )
        return tuple(rows)

    def _sides(self, endpoint: str) -> dict[str, DDSketch] | None:
        """The endpoint's sketches; None past the cap, where a latency is not worth memory."""
        sides = self._sketches.get(endpoint)
        if sides is None and len(self._sketches) < self._max:
            sides = self._sketches[endpoint] = {}
        return sides


def _dump_sketch(sketch: DDSketch) -> dict[str, Any]:
    """A sketch as plain data; ``_load_sketch`` rebuilds it with the same bins and stats.

    ddsketch serialises only to protobuf (not a dependency here, and it drops min, max and
    sum), so this pair reads and writes the sketch's private fields, and nothing else does.
    tests/unit/diff/test_state.py round-trips quantiles exactly: an upgrade of ddsketch that
    changes these fields fails it.
    """
    return {
        "accuracy": sketch._relative_accuracy,
        "positive": _bins(sketch._store),
        "negative": _bins(sketch._negative_store),
        "zero": sketch._zero_count,
        "count": sketch.count,
        "sum": sketch.sum,
        "min": sketch._min,
        "max": sketch._max,
    }


def _load_sketch(data: Mapping[str, Any]) -> DDSketch:
    sketch = DDSketch(relative_accuracy=data["accuracy"])
    for store, bins in (
        (sketch._store, data["positive"]),
        (sketch._negative_store, data["negative"]),
    ):
        for index, n in enumerate(bins["counts"]):
            if n:
                store.add(bins["offset"] + index, n)
    sketch._zero_count = data["zero"]
    sketch._count = data["count"]
    sketch._sum, sketch._min, sketch._max = data["sum"], data["min"], data["max"]
    return sketch


def _bins(store: Store) -> dict[str, Any]:
    """A dense store's counts from its lowest key to its highest (public attributes)."""
    if not isinstance(store, DenseStore):
        raise TypeError(f"a DDSketch store of type {type(store).__name__} is not a DenseStore")
    if not store.count:
        return {"offset": 0, "counts": []}
    low = store.min_key - store.offset
    return {"offset": store.min_key, "counts": store.bins[low : store.max_key - store.offset + 1]}


def _quantiles(sketch: DDSketch) -> Quantiles:
    values = {name: sketch.get_quantile_value(q) or 0.0 for name, q in QUANTILES.items()}
    return Quantiles(int(sketch.count), **{k: round(v, 3) for k, v in values.items()})


def _ratios(measured: Quantiles | None, reference: Quantiles | None) -> dict[str, float]:
    if measured is None or reference is None or not measured.count or not reference.count:
        return {}
    out = {}
    for name in QUANTILES:
        ref = getattr(reference, name)
        if ref > 0:
            out[name] = round(getattr(measured, name) / ref, 3)
    return out
