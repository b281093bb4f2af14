"""A drill's rebalance callbacks driven by hand, without a broker."""

from __future__ import annotations

from typing import Any

import httpx
from confluent_kafka import TopicPartition

from shadowtap.config import Settings
from shadowtap.drill.plan import Plan, Span
from shadowtap.drill.run import DrillRun
from shadowtap.drill.window import Selection, Window

TOPIC = "shadowtap.mirror"


class Consumer:
    """The group's committed offsets; records what is assigned and committed."""

    def __init__(self, committed: int) -> None:
        self.group = {0: committed}
        self.assigned: list[tuple[int, int]] = []
        self.sync: list[tuple[int, int]] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> Any:
        return [TopicPartition(p.topic, p.partition, self.group[p.partition]) for p in partitions]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> Any:
        self.sync += [(p.partition, p.offset) for p in offsets]
        self.group.update((p.partition, p.offset) for p in offsets)
        return offsets

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned += [(p.partition, p.offset) for p in partitions]

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass


async def test_a_refused_position_is_committed_again_before_the_read_starts() -> None:
    # The coordinator was away: the drill's commit of 500 was refused (kept), the group still
    # says 100. When the partition comes back the read must start at 500, not send 100..499
    # to the DR site again.
    settings = Settings.load(env={}, overrides={"replayer": {"target": "http://dr.test"}})
    plan = Plan(TOPIC, Window(0, 10**13), Selection())
    plan.spans[0] = Span(0, 0, 1000, last=999, records=1000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(204))) as c:
        drill = DrillRun(settings, plan, "peak", c)
        consumer = Consumer(committed=100)
        drill._consumer = consumer
        drill._consumers = {TOPIC: consumer}
        drill._recommits[(TOPIC, 0)] = 500
        drill._on_assign(consumer, [TopicPartition(TOPIC, 0)])
    assert consumer.sync == [(0, 500)]
    assert consumer.assigned == [(0, 500)]
