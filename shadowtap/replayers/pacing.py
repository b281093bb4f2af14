"""Pacing: when each mirrored request may be sent.

Usage::

    pacer = Pacer(parse_speed("2x"))          # None for "max": never waits
    await pacer.wait(env.ts)                  # original inter-arrival times, scaled
    rate = parse_rate("500/s")                # None when no ceiling
    await TokenBucket(rate).acquire()         # shadowtap.tokenbucket

- ``--speed max``: as fast as the in-flight window allows.
- ``--speed 1x|2x|0.5x``: GoReplay-style. The first record seen anchors the clock
  (``start_delay_s`` later, so that slightly older records read from other partitions
  right after it still get their own slot); a record recorded ``d`` ms after it is due
  ``d / speed`` ms after the anchor. Late records (the target was slow, or an older record
  from another partition) go at once: the replay catches up rather than drifting further.
- ``--rate N/s``: a ceiling, as a :class:`shadowtap.tokenbucket.TokenBucket` (one token per
  request, waited for when it is not due yet).

A drill (shadowtap.drill) sets ``warp``, which maps a capture time to the replay's timeline
(long idle gaps cut short), and may set ``origin_ts`` so the clock is anchored on the
window's first record rather than on the first one read.

Clock and sleep are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shadowtap.errors import ConfigError
from shadowtap.tokenbucket import Clock, Sleep


def parse_speed(text: str) -> float | None:
    """``max`` → None; ``2x``/``0.5x``/``1`` → the factor. Raise ConfigError otherwise."""
    value = text.strip().lower()
    if value in ("max", "", "0"):
        return None
    number = value.removesuffix("x")
    try:
        factor = float(number)
    except ValueError:
        raise ConfigError(
            f"speed {text!r} is invalid: expected max, or a factor such as 1x, 2x, 0.5x"
        ) from None
    if not 0 < factor < float("inf"):
        raise ConfigError(f"speed {text!r} is invalid: the factor must be positive")
    return factor


def parse_rate(text: str | float) -> float | None:
    """``500/s``, ``500``, ``30/m`` → requests per second; ``0`` or empty → None (no cap)."""
    if isinstance(text, int | float):
        return float(text) if text > 0 else None
    value = text.strip().lower()
    if not value:
        return None
    per = 1.0
    for suffix, seconds in (("/s", 1.0), ("/m", 60.0), ("/min", 60.0)):
        if value.endswith(suffix):
            value, per = value[: -len(suffix)], seconds
            break
    try:
        rate = float(value) / per
    except ValueError:
        raise ConfigError(f"rate {text!r} is invalid: expected N/s, for example 500/s") from None
    if rate < 0:
        raise ConfigError(f"rate {text!r} is invalid: must not be negative")
    return rate or None


class Pacer:
    """Keeps the recorded inter-arrival times, scaled by ``speed`` (None: no pacing)."""

    __slots__ = (
        "_anchor_ts",
        "_anchor_wall",
        "_clock",
        "_sleep",
        "origin_ts",
        "speed",
        "start_delay_s",
        "warp",
    )

    def __init__(
        self,
        speed: float | None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        start_delay_s: float = 0.0,
    ) -> None:
        self.speed = speed
        self.start_delay_s = start_delay_s
        self._clock = clock
        self._sleep = sleep
        self._anchor_ts: int | None = None
        self._anchor_wall = 0.0
        self.warp: Callable[[int], int] | None = None
        self.origin_ts: int | None = None

    def delay(self, ts_ms: int) -> float:
        """Seconds to wait before sending a request recorded at ``ts_ms`` (0 when due)."""
        if self.speed is None:
            return 0.0
        now = self._clock()
        if self.warp is not None:
            ts_ms = self.warp(ts_ms)
        if self._anchor_ts is None:
            origin = ts_ms if self.origin_ts is None else min(ts_ms, self.origin_ts)
            self._anchor_ts, self._anchor_wall = origin, now + self.start_delay_s
        due = self._anchor_wall + (ts_ms - self._anchor_ts) / 1000.0 / self.speed
        return max(0.0, due - now)

    async def wait(self, ts_ms: int) -> None:
        delay = self.delay(ts_ms)
        if delay > 0:
            await self._sleep(delay)
