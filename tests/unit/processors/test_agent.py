"""The agent's batching without a broker: holes are read back, in order, before acks."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.processors.app import Agent, _send_changelog
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Record
from shadowtap.processors.pipeline import Pipeline

TOPIC = "captured"


def _record(offset: int) -> Record:
    value = encode(Envelope(method="GET", path=f"/items/{offset}"))
    return Record(TOPIC, 0, offset, b"k", value)


class FakeProducer:
    """Collects what is sent, per topic; the returned future is already acknowledged."""

    def __init__(self) -> None:
        self.sent: dict[str, list[bytes]] = {}

    async def send(self, topic: str, key: Any, value: bytes, **_: Any) -> Any:
        self.sent.setdefault(topic, []).append(value)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class FakeHoles:
    """Stands in for HoleReader: the group had committed offset 0."""

    def __init__(self, log: dict[int, Record]) -> None:
        self.log = log
        self.asked: list[tuple[int, int]] = []

    def committed(self, tp: tuple[str, int]) -> int:
        return 0

    def read(self, tp: tuple[str, int], lo: int, hi: int) -> tuple[list[Record], int]:
        self.asked.append((lo, hi))
        return [self.log[o] for o in range(lo, hi) if o in self.log], hi


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: Any) -> None:
        self.acked.append(event.message.offset)


def _agent(settings: Settings) -> tuple[Agent, list[bytes]]:
    """An agent without dedup memory; the list fills with what reaches the mirror topic."""
    producer = FakeProducer()
    app = SimpleNamespace(conf=SimpleNamespace(id="g"), producer=producer)
    pipeline = Pipeline(settings)
    pipeline.seen = None
    agent = Agent(settings, app, pipeline=pipeline, metrics=Metrics())
    return agent, producer.sent.setdefault(settings.topics.mirror, [])


async def test_records_faust_skipped_are_read_back_and_sent_before_the_rest() -> None:
    settings = Settings.load(env={})
    agent, mirror = _agent(settings)
    log = {o: _record(o) for o in range(6)}
    holes = FakeHoles(log)
    agent._holes = holes  # type: ignore[assignment]
    stream = FakeStream()
    # Faust delivers 0, 1, then 4, 5: 2 and 3 were skipped by its fetcher.
    for offset in (0, 1, 4, 5):
        record = log[offset]
        await agent._read_holes(record)
        agent._add(record, SimpleNamespace(message=SimpleNamespace(offset=offset)))
    await agent._flush(stream)

    assert holes.asked == [(2, 4)]
    assert [decode(v).path for v in mirror] == [f"/items/{o}" for o in range(6)]
    assert stream.acked == [0, 1, 4, 5]  # read-back records have no Faust event to ack
    assert agent.watermarks.position((TOPIC, 0)) == 6
    assert agent.metrics.holes._value.get() == 2


async def test_nothing_is_committed_past_a_record_still_in_the_batch() -> None:
    settings = Settings.load(env={})
    agent, _ = _agent(settings)
    agent._holes = FakeHoles({})  # type: ignore[assignment]
    for offset in range(3):
        record = _record(offset)
        await agent._read_holes(record)
        agent._add(record, SimpleNamespace(message=SimpleNamespace(offset=offset)))
    assert agent.watermarks.position((TOPIC, 0)) == 0
    await agent._flush(FakeStream())
    assert agent.watermarks.position((TOPIC, 0)) == 3


async def test_table_writes_waiting_in_fausts_buffer_are_all_handed_to_the_producer() -> None:
    published: list[str] = []

    class Channel:
        async def publish_message(self, fut: Any, wait: bool) -> Any:
            published.append(fut.message.value)
            acked = asyncio.get_running_loop().create_future()
            acked.set_result(fut.message.value)
            return acked

    channel = Channel()
    buffer = SimpleNamespace(pending=asyncio.Queue(), message_sent=asyncio.Event())
    for key in ("fp1", "fp2", "fp3"):
        buffer.pending.put_nowait(
            SimpleNamespace(message=SimpleNamespace(channel=channel, value=key))
        )

    acks = await _send_changelog(buffer)

    assert published == ["fp1", "fp2", "fp3"]  # in order, in one go
    assert await asyncio.gather(*acks) == ["fp1", "fp2", "fp3"]
    assert buffer.pending.empty() and buffer.message_sent.is_set()
    assert await _send_changelog(buffer) == []
