"""One token bucket: a non-blocking allow() for the sampler, an awaited acquire() for pacing."""

from __future__ import annotations

import pytest

from shadowtap.errors import ConfigError
from shadowtap.tokenbucket import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_allow_refills_up_to_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, burst=2, clock=clock)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    clock.now += 100.0
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert [bucket.allow() for _ in range(2)] == [True, False]


def test_a_rate_under_one_a_second_still_lets_one_through_per_interval() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.5, burst=0.5, clock=clock)
    assert [bucket.allow() for _ in range(2)] == [True, False]
    clock.now += 1.0
    assert not bucket.allow()
    clock.now += 1.0
    assert bucket.allow()


async def test_acquire_keeps_the_ceiling() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(201):
        await bucket.acquire()
    assert clock.now - start == pytest.approx(2.0)


def test_reserve_bursts_after_idle_then_waits() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=5, clock=clock)
    clock.now += 10
    assert [bucket.reserve() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert not bucket.allow()  # the reservation is a debt allow() respects too


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="positive"):
        TokenBucket(0)
