"""The agent's batching without a broker: holes are read back, in order, before acks, a
batch the broker refuses is read again rather than lost, and the dedup table's changelog
writes travel in the batch of the record that made them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP as FaustTP

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.processors.agent import Agent
from shadowtap.processors.app import FaustAgent
from shadowtap.processors.dedup import MemorySeen
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Record
from shadowtap.processors.pipeline import Pipeline

TOPIC = "captured"
TP = (TOPIC, 0)


def _record(offset: int) -> Record:
    value = encode(Envelope(method="GET", path=f"/items/{offset}"))
    return Record(TOPIC, 0, offset, b"k", value)


def _event(offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(offset=offset))


class FakeBatch:
    """Output's Batch: the (topic, key) of its messages; acknowledged when sealed, unless its
    output was told to refuse it."""

    def __init__(self, output: FakeOutput) -> None:
        self.output = output
        self.messages: list[tuple[str, Any]] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def seal(self) -> None:
        self.output.sealed.append(self.messages)
        if self.output.refuse:
            self.output.refuse -= 1
            self.done.set_exception(RuntimeError("NotEnoughReplicas"))
        else:
            self.done.set_result(None)


class FakeOutput:
    """Stands in for Output: keeps what is sent, per topic, and each sealed batch."""

    def __init__(self) -> None:
        self.sent: dict[str, list[bytes]] = {}
        self.current: FakeBatch | None = None
        self.sealed: list[list[tuple[str, Any]]] = []
        self.refuse = 0  # how many of the next batches the broker refuses

    def send(
        self,
        topic: str,
        key: Any,
        value: bytes,
        headers: Any = None,
        *,
        partition: Any = None,
        batch: FakeBatch | None = None,
        timestamp: int = 0,
    ) -> None:
        self.sent.setdefault(topic, []).append(value)
        (batch or self._current()).messages.append((topic, key))

    def cut(self) -> FakeBatch:
        batch = self._current()
        self.current = None
        return batch

    def _current(self) -> FakeBatch:
        if self.current is None:
            self.current = FakeBatch(self)
        return self.current


class FakeHoles:
    """Stands in for HoleReader: the group had committed offset 0."""

    def __init__(self, log: dict[int, Record], short: int | None = None) -> None:
        self.log = log
        self.asked: list[tuple[int, int]] = []
        self.short = short  # a read stops (times out) at this offset once

    def committed(self, tp: tuple[str, int]) -> int:
        return 0

    def read(self, tp: tuple[str, int], lo: int, hi: int) -> tuple[list[Record], int]:
        self.asked.append((lo, hi))
        if self.short is not None and lo <= self.short < hi:
            hi, self.short = self.short, None
        return [self.log[o] for o in range(lo, hi) if o in self.log], hi


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: Any) -> None:
        self.acked.append(event.message.offset)


def _agent(
    settings: Settings, log: dict[int, Record] | None = None
) -> tuple[Agent, Any, FakeStream]:
    """An agent without dedup memory, reading holes from ``log``; also its output and the
    stream its finished events are acked to."""
    output = FakeOutput()
    pipeline = Pipeline(settings)
    pipeline.seen = None
    holes = FakeHoles(log or {})
    agent = Agent(settings, pipeline=pipeline, metrics=Metrics(), output=output, reader=holes)  # type: ignore[arg-type]
    stream = FakeStream()
    agent.batches.ack = stream.ack
    return agent, output, stream


def _holes(agent: Agent) -> FakeHoles:
    reader = agent.holes.reader
    assert isinstance(reader, FakeHoles)
    return reader


def _faust(agent: Agent) -> FaustAgent:
    """The Faust shell around ``agent``, its app a stand-in."""
    return FaustAgent(SimpleNamespace(conf=SimpleNamespace(id="g")), agent)


async def _deliver(agent: Agent, *offsets: int) -> None:
    """What ``FaustAgent.run`` does with each event Faust hands over."""
    for offset in offsets:
        await agent.take(_record(offset), _event(offset))


def _paths(producer: FakeOutput, settings: Settings) -> list[str]:
    return [decode(v).path for v in producer.sent.get(settings.topics.mirror, [])]


async def test_records_faust_skipped_are_read_back_and_sent_before_the_rest() -> None:
    settings = Settings.load(env={})
    agent, producer, stream = _agent(settings, {o: _record(o) for o in range(6)})
    await _deliver(agent, 0, 1, 4, 5)  # 2 and 3 were skipped by Faust's fetcher
    await agent.batches.flush()

    assert _holes(agent).asked == [(2, 4)]
    assert _paths(producer, settings) == [f"/items/{o}" for o in range(6)]
    assert stream.acked == [0, 1, 4, 5]  # read-back records have no Faust event to ack
    assert agent.watermarks.position(TP) == 6
    assert agent.metrics.holes._value.get() == 2


async def test_nothing_is_committed_past_a_record_still_in_the_batch() -> None:
    settings = Settings.load(env={})
    agent, _, _ = _agent(settings)
    await _deliver(agent, 0, 1, 2)
    assert agent.watermarks.position(TP) == 0
    await agent.batches.flush()
    assert agent.watermarks.position(TP) == 3


async def test_a_batch_the_broker_refuses_is_read_again_from_the_committed_offset() -> None:
    settings = Settings.load(env={})
    agent, producer, stream = _agent(settings, {o: _record(o) for o in range(5)})
    await _deliver(agent, 0, 1, 2)
    producer.refuse = 1
    await agent.batches.flush()  # does not raise: the ticker and the stream go on

    assert stream.acked == [] and agent.watermarks.position(TP) is None
    assert agent.metrics.send_failures._value.get() == 1
    # The next record finds 0..2 as a hole (the group committed 0) and reads them back.
    await _deliver(agent, 3, 4)
    await agent.batches.flush()
    assert _holes(agent).asked == [(0, 3)]
    assert _paths(producer, settings) == [f"/items/{o}" for o in (0, 1, 2, 0, 1, 2, 3, 4)]
    assert agent.watermarks.position(TP) == 5


async def test_a_long_hole_is_read_and_sent_a_batch_at_a_time() -> None:
    settings = Settings.load(env={"SHADOWTAP_PROCESSOR_BATCH_SIZE": "100"})
    agent, producer, _ = _agent(settings, {o: _record(o) for o in range(350)})
    await _deliver(agent, 350)

    assert _holes(agent).asked == [(0, 100), (100, 200), (200, 300), (300, 350)]
    # each hundred acknowledged before the next was read; the last 50 and 350 still open
    assert [len(b) for b in producer.sealed] == [100, 100, 100]
    await agent.batches.flush()
    assert [len(b) for b in producer.sealed] == [100, 100, 100, 51]
    assert agent.watermarks.position(TP) == 351


async def test_a_hole_read_that_times_out_starts_the_partition_over() -> None:
    settings = Settings.load(env={})
    agent, producer, _ = _agent(settings, {o: _record(o) for o in range(8)})
    _holes(agent).short = 3
    await _deliver(agent, 0, 6)  # 1..5 skipped; the read stops after 1 and 2
    assert not agent.watermarks.knows(TP)
    await _deliver(agent, 7)  # starts again at the committed offset: 0..6 read back
    await agent.batches.flush()

    assert _holes(agent).asked == [(1, 6), (0, 7)]
    assert set(_paths(producer, settings)) == {f"/items/{o}" for o in range(8)}
    assert agent.watermarks.position(TP) == 8


async def test_dedup_changelog_writes_travel_in_the_batch_of_their_record() -> None:
    settings = Settings.load(env={})
    agent, output, stream = _agent(settings)
    faust = _faust(agent)
    passed: list[Any] = []
    faust.app.producer = SimpleNamespace(buffer=SimpleNamespace(put=passed.append))
    agent.pipeline.seen = MemorySeen(60, 1000)  # dedup on: its table writes are diverted
    faust._changelog = "g-dedup-changelog"
    faust._divert_table_writes()
    faust._divert_table_writes()  # Faust may run the agent again: diverted once only

    await _deliver(agent, 0)
    faust.app.producer.buffer.put(_future_message("g-dedup-changelog", b'["fp0"]'))  # the table's
    other = _future_message("another-topic", b"k")
    faust.app.producer.buffer.put(other)  # not the table's: Faust sends it as before
    await agent.batches.flush()

    assert output.sealed == [[(settings.topics.mirror, b"k"), ("g-dedup-changelog", b'["fp0"]')]]
    assert passed == [other]
    assert stream.acked == [0] and agent.watermarks.position(TP) == 1


async def test_a_refused_batch_takes_none_of_the_next_batchs_messages_with_it() -> None:
    settings = Settings.load(env={})
    agent, output, stream = _agent(settings)
    first, second = _record(0), Record(TOPIC, 1, 0, b"k1", _record(0).value)
    await _deliver(agent, 0)
    output.refuse = 1
    await agent.batches.close()  # finished in the background, while the next batch fills
    await agent.take(second, _event(0))
    await agent.batches.flush()

    mirror = settings.topics.mirror
    assert output.sealed == [[(mirror, first.key)], [(mirror, b"k1")]]
    assert not agent.watermarks.knows(TP)  # refused: partition 0 starts over
    assert agent.watermarks.position((TOPIC, 1)) == 1 and stream.acked == [0]


def _future_message(topic: str, key: bytes) -> Any:
    """Faust's FutureMessage as a table queues it: serialized and partitioned."""
    channel = SimpleNamespace(get_topic_name=lambda: topic)
    message = SimpleNamespace(channel=channel, key=key, value=b"[]", headers=[], partition=0)
    return SimpleNamespace(message=message)


async def test_a_rebalance_finishes_and_commits_the_batches_in_flight_first() -> None:
    settings = Settings.load(env={})
    agent, output, stream = _agent(settings)
    faust = _faust(agent)
    committed: list[dict[Any, int]] = []

    async def commit(offsets: dict[Any, int]) -> bool:  # the transport's Consumer._commit
        committed.append(offsets)
        return True

    faust.app.consumer = SimpleNamespace(_commit=commit)
    await _deliver(agent, 0, 1)
    await agent.batches.close()  # finishing in the background
    await _deliver(agent, 2)  # the batch still filling

    revoked = {FaustTP(TOPIC, 0), FaustTP(TOPIC, 1)}
    await faust.on_partitions_revoked(revoked)
    assert [len(b) for b in output.sealed] == [2, 1] and stream.acked == [0, 1, 2]
    assert committed == [{FaustTP(TOPIC, 0): 3}]  # partition 1 had nothing here
    assert not agent.watermarks.knows(TP)  # Faust seeks back to the committed offsets


async def test_a_partition_back_after_a_refused_commit_resumes_where_this_worker_was() -> None:
    # The broker was away longer than the session: the commit at the rebalance is refused
    # (the member was replaced), and Faust seeks back to the group's old offset, 0.
    settings = Settings.load(env={})
    agent, output, _ = _agent(settings)
    faust = _faust(agent)

    async def refuse(offsets: dict[Any, int]) -> bool:
        return False  # what Faust's commit returns for CommitFailedError

    faust.app.consumer = SimpleNamespace(_commit=refuse)
    await _deliver(agent, 0, 1, 2)
    await faust.on_partitions_revoked({FaustTP(TOPIC, 0)})
    assert not agent.watermarks.knows(TP)

    await _deliver(agent, *range(5))  # Faust delivers from the group's offset again
    await agent.batches.flush()
    assert _paths(output, settings) == [f"/items/{o}" for o in (0, 1, 2, 3, 4)]  # none twice
    assert agent.watermarks.position(TP) == 5
