"""What a rebalance sends twice, without a broker: the worker's librdkafka callbacks driven by
hand against a recording consumer and producer, deliveries through httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from confluent_kafka import KafkaError, TopicPartition

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode
from shadowtap.replayers.worker import Replayer

MIRROR = Settings.load(env={}).topics.mirror
PARTITION = [TopicPartition(MIRROR, 0)]


class Message:
    """What ``Consumer.consume`` returns: one record of partition 0, with a key of its own."""

    def __init__(self, offset: int, topic: str = MIRROR) -> None:
        self._offset = offset
        self._topic = topic
        self._value = encode(Envelope(method="POST", path=f"/items/{offset}"))

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k%d" % self._offset

    def value(self) -> bytes:
        return self._value


class Consumer:
    """Records commits; asynchronous ones stay unanswered until the test answers them."""

    def __init__(self) -> None:
        self.sync: list[list[tuple[int, int]]] = []
        self.pending: list[list[TopicPartition]] = []
        self.group: dict[int, int] = {}  # the group's committed offset per partition

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> Any:
        if asynchronous:
            self.pending.append(offsets)
            return None
        self.sync.append([(p.partition, p.offset) for p in offsets])
        self.group.update((p.partition, p.offset) for p in offsets)
        return offsets

    def committed(self, partitions: list[TopicPartition], timeout: float) -> Any:
        return [
            TopicPartition(p.topic, p.partition, self.group.get(p.partition, -1001))
            for p in partitions
        ]


class Producer:
    """Acknowledges each result when flushed (or polled), as librdkafka reports them; counts
    the messages it was given per topic."""

    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.topics: dict[str, int] = {}

    def produce(self, topic: str, value: bytes, **kw: Any) -> None:
        self.topics[topic] = self.topics.get(topic, 0) + 1
        self.reports.append(kw["on_delivery"])

    def poll(self, timeout: float = 0) -> int:
        reports, self.reports = self.reports, []
        for report in reports:
            report(None, None)
        return len(reports)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


class Target:
    """Paths it was sent; it answers once ``answer`` is set."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.answer = asyncio.Event()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.path)
        await self.answer.wait()
        return httpx.Response(200)


Make = Callable[..., tuple[Replayer, Target]]


@pytest.fixture
async def make_worker() -> AsyncIterator[Make]:
    """A worker assigned partition 0, and its target (answering unless told otherwise)."""
    clients: list[httpx.AsyncClient] = []

    def make(max_in_flight: int = 4, answering: bool = True) -> tuple[Replayer, Target]:
        settings = Settings.load(
            env={},
            overrides={
                "replayer": {"target": "http://staging.test", "max_in_flight": max_in_flight}
            },
        )
        target = Target()
        if answering:
            target.answer.set()
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(target.handle)))
        worker = Replayer(settings, clients[-1])
        worker.attach(Consumer())
        worker.engine.outbox.producer = Producer()
        worker._on_assign(_mirror(worker), PARTITION)
        return worker, target

    yield make
    for client in clients:
        await client.aclose()


async def _read(
    worker: Replayer, offsets: range, *, acked: bool = True, topic: str = MIRROR
) -> None:
    """Hand the worker these records and let its lanes run dry; then (``acked``) deliver
    the results' reports."""
    for offset in offsets:
        _accept(worker, Message(offset, topic))
    for _ in range(20):
        await asyncio.sleep(0)
    if worker.engine.lanes.tasks:
        await asyncio.wait(worker.engine.lanes.tasks, timeout=5)
    if acked:
        worker.engine.outbox.poll()


def _mirror(worker: Replayer) -> Consumer:
    consumer: Consumer = worker._consumers[MIRROR]
    return consumer


def _accept(worker: Replayer, msg: Message) -> None:
    """What the worker's source does with each record it reads."""
    worker.engine.accept(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())


async def test_records_waiting_for_a_slot_are_left_to_the_new_owner(make_worker: Make) -> None:
    # The window holds 8 × max_in_flight records; only max_in_flight are with the target.
    worker, target = make_worker(max_in_flight=2, answering=False)
    for offset in range(10):
        _accept(worker, Message(offset))
    for _ in range(20):
        await asyncio.sleep(0)
    assert target.seen == ["/items/0", "/items/1"]  # two in flight, eight waiting

    worker._on_revoke(_mirror(worker), PARTITION)
    target.answer.set()
    await _read(worker, range(0))
    # Only what was in flight went out after the revoke (it was sent before it).
    assert target.seen == ["/items/0", "/items/1"]


async def test_a_commit_still_unanswered_when_revoked_is_made_at_the_revoke(
    make_worker: Make,
) -> None:
    worker, _ = make_worker()
    consumer = _mirror(worker)
    await _read(worker, range(3))
    worker._commit()  # the timer: asynchronous, its answer still to come
    assert [[(p.partition, p.offset) for p in c] for c in consumer.pending] == [[(0, 3)]]

    worker._on_revoke(consumer, PARTITION)
    # Nothing finished since the timer's commit, yet it is made again, and synchronously:
    # the timer's may come back ILLEGAL_GENERATION, and then nobody would make it.
    assert consumer.sync == [[(0, 3)]]
    worker._on_commit(KafkaError(KafkaError.ILLEGAL_GENERATION), consumer.pending[0])
    worker._on_assign(consumer, PARTITION)  # assigned back: the group has 3 already
    assert consumer.sync == [[(0, 3)]]


async def test_positions_of_lost_partitions_are_committed_when_they_come_back(
    make_worker: Make,
) -> None:
    # The broker was away longer than the session: librdkafka drops the assignment ("lost")
    # and the timer's last commit is refused with UNKNOWN_MEMBER_ID once the broker is back.
    worker, _ = make_worker()
    consumer = _mirror(worker)
    consumer.group[0] = 2
    await _read(worker, range(2, 7))
    worker._commit()
    worker._on_lost(consumer, PARTITION)
    worker._on_commit(KafkaError(KafkaError.UNKNOWN_MEMBER_ID), consumer.pending[0])

    worker._on_assign(consumer, PARTITION)  # the same worker gets it back
    assert consumer.sync == [[(0, 7)]]  # offsets 2..6 are not sent again

    # Had the group moved past it (another worker committed 9 meanwhile), nothing is done.
    await _read(worker, range(7, 8))
    worker._on_lost(consumer, PARTITION)
    consumer.group[0] = 9
    worker._on_assign(consumer, PARTITION)
    assert consumer.sync == [[(0, 7)]]


async def test_records_whose_results_are_on_their_way_are_committed_at_the_revoke(
    make_worker: Make,
) -> None:
    worker, target = make_worker()
    await _read(worker, range(4), acked=False)  # answered; the results not acknowledged yet
    assert len(target.seen) == 4 and _mirror(worker).sync == []

    worker._on_revoke(_mirror(worker), PARTITION)
    assert _mirror(worker).sync == [[(0, 4)]]  # not sent again by the new owner


async def test_each_topic_is_committed_to_the_group_that_reads_it(make_worker: Make) -> None:
    # The retry topic is read by a consumer of its own, in <group>.retry: one group for both
    # topics balanced their partition count, and a worker could keep only retry partitions.
    worker, _ = make_worker()
    mirror, retry = _mirror(worker), Consumer()
    worker.attach(mirror, retry)
    assert worker.retry_group == worker.settings.replayer.group + ".retry"
    worker._on_assign(retry, [TopicPartition(worker.retry_topic, 0)])
    await _read(worker, range(3))
    await _read(worker, range(5, 7), topic=worker.retry_topic)
    worker._commit()
    assert [[(p.topic, p.offset) for p in c] for c in mirror.pending] == [[(MIRROR, 3)]]
    assert [[(p.topic, p.offset) for p in c] for c in retry.pending] == [[(worker.retry_topic, 7)]]

    # A revoke in one group commits that group's partitions only, to that group.
    await _read(worker, range(7, 9), topic=worker.retry_topic)
    worker._on_revoke(retry, [TopicPartition(worker.retry_topic, 0)])
    assert (mirror.sync, retry.sync) == ([], [[(0, 9)]])


async def test_positions_kept_for_one_group_survive_the_other_groups_assignment(
    make_worker: Make,
) -> None:
    # The broker was away: both consumers lost their partitions and the refused positions
    # are kept for both topics. The retry group is assigned back first; the mirror's kept
    # position must still be committed when the mirror's group comes back (it was dropped).
    worker, _ = make_worker()
    mirror, retry = _mirror(worker), Consumer()
    worker.attach(mirror, retry)
    retry_partition = [TopicPartition(worker.retry_topic, 0)]
    worker._on_assign(retry, retry_partition)
    await _read(worker, range(5))
    await _read(worker, range(3), topic=worker.retry_topic)
    worker._commit()
    worker._on_lost(mirror, PARTITION)
    worker._on_lost(retry, retry_partition)
    worker._on_commit(KafkaError(KafkaError.UNKNOWN_MEMBER_ID), mirror.pending[0])
    worker._on_commit(KafkaError(KafkaError.UNKNOWN_MEMBER_ID), retry.pending[0])

    worker._on_assign(retry, retry_partition)
    worker._on_assign(mirror, PARTITION)
    assert (mirror.sync, retry.sync) == ([[(0, 5)]], [[(0, 3)]])
