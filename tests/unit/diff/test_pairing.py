"""Pairing by record id: first result wins, unpaired only past the slowest target's grace."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from shadowtap.diff.model import Side
from shadowtap.diff.pairing import Group, Pairing, progress_key

OK = Side(200)


def _offer(pairing: Pairing[Side], i: int, target: str, side: Side = OK) -> list[Group[Side]]:
    return pairing.offer(f"r{i}", i * 1000, target, side)


def test_a_record_completes_when_every_target_answered() -> None:
    pairing: Pairing[Side] = Pairing(["a", "b", "c"])
    assert _offer(pairing, 1, "a", OK) == []
    assert _offer(pairing, 1, "c", OK) == []
    (record,) = _offer(pairing, 1, "b", OK)
    assert set(record.payloads) == {"a", "b", "c"} and (record.id, record.ts) == ("r1", 1000)
    assert pairing.pending == 0


def test_the_first_result_wins_and_later_ones_are_redeliveries() -> None:
    pairing: Pairing[Side] = Pairing(["a", "b"])
    first, second = Side(201), Side(409)  # a redelivered POST may answer 409
    _offer(pairing, 1, "a", first)
    _offer(pairing, 1, "a", second)
    (record,) = _offer(pairing, 1, "b", OK)
    assert record.payloads["a"] is first
    _offer(pairing, 1, "b", second)  # after completion: still a redelivery
    assert pairing.redeliveries == {"a": 1, "b": 1}


def test_a_lagging_target_delays_pairing_instead_of_unpairing() -> None:
    pairing: Pairing[Side] = Pairing(["fast", "slow"], grace_ms=5_000)
    for i in range(100):  # "fast" is 100 s ahead
        _offer(pairing, i, "fast", OK)
    _offer(pairing, 0, "slow", OK)
    assert pairing.expire() == []  # "slow" has not moved past anything by the grace period
    completed: list[Group[Side]] = []
    for i in range(1, 50):
        completed += _offer(pairing, i, "slow", OK)
    assert len(completed) == 49 and pairing.expire() == [] and pairing.unpaired == 0


def test_unpaired_once_the_slowest_target_passed_by_the_grace_period() -> None:
    pairing: Pairing[Side] = Pairing(["a", "b"], grace_ms=5_000)
    _offer(pairing, 1, "a", OK)  # "b" never answers r1
    for i in range(2, 10):
        _offer(pairing, i, "a", OK)
        _offer(pairing, i, "b", OK)
    (lost,) = pairing.expire()
    assert lost.id == "r1" and set(lost.payloads) == {"a"} and pairing.unpaired == 1
    _offer(pairing, 20, "a", OK)
    assert [r.id for r in pairing.flush()] == ["r20"]


def test_memory_is_bounded_when_a_target_never_answers() -> None:
    pairing: Pairing[Side] = Pairing(["a", "b"], max_pending=10)
    given_up: list[Group[Side]] = []
    for i in range(100):
        given_up += _offer(pairing, i, "a", OK)
    assert pairing.pending == 10 and len(given_up) == 90
    assert [r.id for r in given_up[:2]] == ["r0", "r1"]  # the oldest go first


class _Table(MutableMapping[str, Any]):
    """A dict that keeps what a Faust table would send to its changelog (as JSON)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[str, bytes | None]] = []

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.changelog.append((key, orjson.dumps(value)))

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.changelog.append((key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def replayed(self) -> dict[str, Any]:
        """The table a new worker recovers from the changelog."""
        out: dict[str, Any] = {}
        for key, value in self.changelog:
            if value is None:
                out.pop(key, None)
            else:
                out[key] = orjson.loads(value)
        return out


def test_every_change_reaches_the_store_and_a_new_worker_resumes_from_it() -> None:
    table = _Table()
    first: Pairing[str] = Pairing(["a", "b"], grace_ms=5_000, store=table, partition=3)
    first.offer("r1", 1_000, "a", "a1")
    first.offer("r2", 2_000, "a", "a2")
    first.offer("r2", 2_000, "b", "b2")  # complete: remembered as done, for redeliveries
    # The worker stops; another recovers partition 3 from the changelog.
    recovered = table.replayed()
    assert recovered["r1"] == {"ts": 1_000, "p": 3, "sides": {"a": "a1"}}
    assert recovered["r2"] == {"ts": 2_000, "p": 3, "done": True}
    recovered["x"] = {"ts": 1, "p": 4, "sides": {"a": "other partition"}}
    second: Pairing[str] = Pairing(["a", "b"], grace_ms=5_000, store=recovered, partition=3)
    assert second.recover() == 1
    second.offer("r2", 2_000, "b", "again")
    assert second.redeliveries == {"b": 1}
    (record,) = second.offer("r1", 1_000, "b", "b1")
    assert record.payloads == {"a": "a1", "b": "b1"}
    second.offer("r9", 9_000, "a", "a9")
    second.offer("r9", 9_000, "b", "b9")  # both targets past everything by the grace period
    assert second.expire() == [] and set(recovered) == {"r9", "x", progress_key(3)}


def test_a_restarted_worker_gives_up_what_a_finished_target_will_never_answer() -> None:
    table = _Table()
    first: Pairing[str] = Pairing(["a", "b"], grace_ms=5_000, store=table, partition=0)
    first.offer("r1", 1_000, "a", "a1")  # b never answers r1
    first.offer("r9", 9_000, "b", "b9")  # b's last result: b has finished
    second: Pairing[str] = Pairing(["a", "b"], grace_ms=5_000, store=table.replayed())
    second.recover()
    second.offer("r20", 20_000, "a", "a20")  # only a goes on
    (lost,) = second.expire()
    assert lost.id == "r1" and second.unpaired == 1
