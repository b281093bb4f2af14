"""Latency per endpoint and side, in bounded-memory quantile sketches (DDSketch).

Each sketch keeps at most a fixed number of logarithmic bins (quantiles within 1 % of the
true value), whatever the number of requests, and sketches merge, so per-partition state
can be combined. The candidate/baseline ratios compare sides measured the same way: both by
the replayer, under the same pacing. Production's recorded duration is measured inside the
production server: it is kept beside them, labelled, and never part of a ratio.
"""

from __future__ import annotations

from ddsketch import DDSketch

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
        sides = self._sketches.get(endpoint)
        if sides is None:
            if len(self._sketches) >= self._max:
                return  # beyond the cap a latency is not worth unbounded memory
            sides = self._sketches[endpoint] = {}
        sketch = sides.get(side)
        if sketch is None:
            sketch = sides[side] = DDSketch(relative_accuracy=_ACCURACY)
        sketch.add(max(duration_ms, 0.0))

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
