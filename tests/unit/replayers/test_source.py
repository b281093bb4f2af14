"""Several consumers read as one source: each is read in turn, each topic paused through
its own consumer."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from shadowtap.replayers.source import ConsumerSources
from tests.unit.replayers.test_rebalance import Message


class Consumer:
    """Always has ``backlog`` records of ``topic`` ready; records what was paused."""

    def __init__(self, topic: str, backlog: int) -> None:
        self.topic, self.backlog = topic, backlog
        self.reads = 0
        self.paused: list[tuple[str, int]] = []

    def consume(self, limit: int, timeout: float) -> list[Message]:
        self.reads += 1
        return [Message(i, self.topic) for i in range(min(limit, self.backlog))]

    def pause(self, parts: list[TopicPartition]) -> None:
        self.paused += [(p.topic, p.partition) for p in parts]

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, 0)]


def test_a_busy_consumer_does_not_starve_the_other() -> None:
    mirror, retry = Consumer("mirror", 10_000), Consumer("retry", 3)
    source = ConsumerSources({"mirror": mirror, "retry": retry})
    got: list[str] = []

    def accept(topic: str, *_: Any) -> None:
        got.append(topic)

    for _ in range(4):
        assert source.read(100, accept) == 100
    # The retry consumer is read first every other time (and its callbacks served).
    assert retry.reads == 2 and got.count("retry") == 6


def test_each_topic_is_paused_through_its_own_consumer() -> None:
    mirror, retry = Consumer("mirror", 0), Consumer("retry", 0)
    source = ConsumerSources({"mirror": mirror, "retry": retry})
    source.pause(("retry", 0))
    assert (mirror.paused, retry.paused) == ([], [("retry", 0)])
    source.pause_all()
    assert (mirror.paused, retry.paused) == ([("mirror", 0)], [("retry", 0), ("retry", 0)])
