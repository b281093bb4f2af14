"""The cap on long idle gaps: a drill at 1x need not wait out a quiet night.

From the window's capture times (sorted, from the plan), every gap between two consecutive
records longer than the cap is cut to the cap; the pacer (shadowtap.replayers.pacing) maps
each capture time through the result, so the traffic either side of a gap keeps its own
shape::

    warp = gap_warp(plan.times, cap_ms=60_000)    # None: no gap that long
    warp(ts)                                       # ts minus what the gaps before it lost
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence


def gap_warp(times: Sequence[int], cap_ms: int) -> Callable[[int], int] | None:
    """Capture time → replay time with idle gaps over ``cap_ms`` cut to ``cap_ms``."""
    if cap_ms <= 0 or len(times) < 2:
        return None
    ends: list[int] = []
    cuts: list[int] = []
    total = 0
    previous = times[0]
    for current in times[1:]:
        gap = current - previous
        if gap > cap_ms:
            total += gap - cap_ms
            ends.append(current)
            cuts.append(total)
        previous = current
    if not ends:
        return None

    def warp(ts: int) -> int:
        i = bisect_right(ends, ts)
        return ts - cuts[i - 1] if i else ts

    return warp
