"""One token bucket for every rate ceiling: a route's sampling cap and a replay's ``--rate``.

``rate`` tokens a second flow in, up to ``burst`` (at least one); the bucket starts full. Two
ways to spend a token, for two kinds of caller:

- :meth:`TokenBucket.allow` never waits: True and a token spent, or False (the processor's
  per-route ``rate_per_s``, where the request over the cap is dropped);
- :meth:`TokenBucket.acquire` always gets one and waits until it is due (the replayer's
  ``--rate``, where every request is sent, later). A reservation may run the bucket below
  zero: the next one waits for that debt too (GCRA's virtual schedule).

Clock and sleep are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from shadowtap.errors import ConfigError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """At most ``rate`` tokens a second, ``burst`` at once after idle time."""

    __slots__ = ("_burst", "_clock", "_last", "_sleep", "_tokens", "rate")

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ConfigError(f"rate must be positive, got {rate}")
        self.rate = rate
        self._burst = max(1.0, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._burst
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def allow(self) -> bool:
        """Spend a token if there is one; never waits."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def reserve(self) -> float:
        """Spend the next token, due or not; return how many seconds until it is due."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
