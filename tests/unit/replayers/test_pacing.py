"""Pacing on a fake clock (the rate ceiling: tests/unit/test_tokenbucket.py)."""

from __future__ import annotations

import pytest

from shadowtap.errors import ConfigError
from shadowtap.replayers.pacing import Pacer, parse_rate, parse_speed


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "value"), [("max", None), ("1x", 1.0), ("2x", 2.0), ("0.5x", 0.5), ("3", 3.0)]
)
def test_parse_speed(text: str, value: float | None) -> None:
    assert parse_speed(text) == value


@pytest.mark.parametrize("text", ["fast", "-1x", "0x"])
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_speed(text)


def test_parse_rate() -> None:
    assert parse_rate("500/s") == 500
    assert parse_rate("120/m") == 2
    assert parse_rate("0") is None
    assert parse_rate(0.0) is None
    with pytest.raises(ConfigError):
        parse_rate("lots")


async def test_pacer_keeps_inter_arrival_times_scaled() -> None:
    clock = FakeClock()
    recorded = [0, 10, 10, 250, 1000, 1003]  # ms after the first request
    for speed in (1.0, 2.0, 0.5):
        pacer = Pacer(speed, clock=clock, sleep=clock.sleep)
        start = clock.now
        sent = []
        for ts in recorded:
            await pacer.wait(1_700_000_000_000 + ts)
            sent.append(clock.now - start)
        expected = [ts / 1000 / speed for ts in recorded]
        assert sent == pytest.approx(expected, abs=1e-9)


async def test_pacer_sends_late_records_at_once() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    await pacer.wait(0)
    clock.now += 5.0  # the target was slow: we are 5 s behind
    assert pacer.delay(1000) == 0
    assert pacer.delay(-500) == 0  # an older record from another partition


def test_max_speed_never_waits() -> None:
    pacer = Pacer(None)
    assert pacer.delay(0) == pacer.delay(10**12) == 0


async def test_start_delay_gives_older_records_from_other_partitions_their_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep, start_delay_s=0.5)
    start = clock.now
    assert pacer.delay(1000) == pytest.approx(0.5)  # the first record read anchors the clock
    assert pacer.delay(800) == pytest.approx(0.3)  # an older one read next keeps its gap
    assert pacer.delay(1100) == pytest.approx(0.6)
    assert clock.now == start
