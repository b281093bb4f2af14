"""Pairing by record id: first result wins, unpaired only past the slowest target's grace."""

from __future__ import annotations

from shadowtap.diff.model import Request, Side
from shadowtap.diff.pairing import Pairing

OK = Side(200)
PROD = Side(200, duration_ms=1.0)


def _req(i: int, ts: int | None = None) -> Request:
    return Request(f"r{i}", "GET", "/a", ts=i * 1000 if ts is None else ts)


def test_a_record_completes_when_every_target_answered() -> None:
    pairing = Pairing(["a", "b", "c"])
    assert pairing.offer(_req(1), "a", OK, PROD) == []
    assert pairing.offer(_req(1), "c", OK) == []
    (record,) = pairing.offer(_req(1), "b", OK)
    assert set(record.sides) == {"a", "b", "c"} and record.production is PROD
    assert pairing.pending == 0


def test_the_first_result_wins_and_later_ones_are_redeliveries() -> None:
    pairing = Pairing(["a", "b"])
    first, second = Side(201), Side(409)  # a redelivered POST may answer 409
    pairing.offer(_req(1), "a", first)
    pairing.offer(_req(1), "a", second)
    (record,) = pairing.offer(_req(1), "b", OK)
    assert record.sides["a"] is first
    pairing.offer(_req(1), "b", second)  # after completion: still a redelivery
    assert pairing.redeliveries == {"a": 1, "b": 1}


def test_a_lagging_target_delays_pairing_instead_of_unpairing() -> None:
    pairing = Pairing(["fast", "slow"], grace_ms=5_000)
    for i in range(100):  # "fast" is 100 s ahead
        pairing.offer(_req(i), "fast", OK)
    pairing.offer(_req(0), "slow", OK)
    assert pairing.expire() == []  # "slow" has not moved past anything by the grace period
    completed = []
    for i in range(1, 50):
        completed += pairing.offer(_req(i), "slow", OK)
    assert len(completed) == 49 and pairing.expire() == [] and pairing.unpaired == 0


def test_unpaired_once_the_slowest_target_passed_by_the_grace_period() -> None:
    pairing = Pairing(["a", "b"], grace_ms=5_000)
    pairing.offer(_req(1), "a", OK)  # "b" never answers r1
    for i in range(2, 10):
        pairing.offer(_req(i), "a", OK)
        pairing.offer(_req(i), "b", OK)
    (lost,) = pairing.expire()
    assert lost.request.id == "r1" and set(lost.sides) == {"a"} and pairing.unpaired == 1
    pairing.offer(_req(20), "a", OK)
    assert [r.request.id for r in pairing.flush()] == ["r20"]


def test_memory_is_bounded_when_a_target_never_answers() -> None:
    pairing = Pairing(["a", "b"], max_pending=10)
    given_up = []
    for i in range(100):
        given_up += pairing.offer(_req(i), "a", OK)
    assert pairing.pending == 10 and len(given_up) == 90
    assert [r.request.id for r in given_up[:2]] == ["r0", "r1"]  # the oldest go first
