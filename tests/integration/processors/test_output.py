"""Output on the real broker: a sealed batch resolves once its messages are in their topics,
and a message the broker cannot take fails its batch, not the next one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from confluent_kafka import KafkaException

from shadowtap.config import Settings
from shadowtap.kafka import create_topics, make_consumer
from shadowtap.processors.output import Output


def _read(settings: Settings, topic: str, n: int) -> list[tuple[int, bytes, bytes]]:
    consumer = make_consumer(settings.kafka, f"reader-{topic}")
    consumer.subscribe([topic])
    out: list[tuple[int, bytes, bytes]] = []
    try:
        for _ in range(60):
            out += [
                (m.partition(), m.key(), m.value())
                for m in consumer.consume(100, 0.5)
                if not m.error()
            ]
            if len(out) >= n:
                break
    finally:
        consumer.close()
    return out


@pytest.fixture
async def output(settings: Settings) -> AsyncIterator[Output]:
    create_topics(settings)
    output = Output(settings.kafka, asyncio.get_running_loop())
    yield output
    output.close()


async def test_a_sealed_batch_resolves_once_every_message_is_in_its_topic(
    settings: Settings, output: Output
) -> None:
    for i in range(200):
        output.send(settings.topics.mirror, b"k%d" % i, b"v%d" % i, [("h", b"1")])
    output.send(settings.topics.dlq, b"d", b"bad", partition=2)
    await asyncio.wait_for(output.seal(), 30)

    mirror = _read(settings, settings.topics.mirror, 200)
    assert sorted(v for _, _, v in mirror) == sorted(b"v%d" % i for i in range(200))
    assert _read(settings, settings.topics.dlq, 1) == [(2, b"d", b"bad")]


async def test_a_message_the_broker_cannot_take_fails_its_own_batch_only(
    settings: Settings, output: Output
) -> None:
    output.send(settings.topics.mirror, b"k", b"x" * 2_000_000)  # over message.max.bytes
    with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
        await asyncio.wait_for(output.seal(), 30)
    output.send(settings.topics.mirror, b"k", b"x", [("h", 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError):  # not even queued: its batch fails, nothing else does
        await asyncio.wait_for(output.seal(), 30)
    output.send(settings.topics.mirror, b"k", b"fine")
    await asyncio.wait_for(output.seal(), 30)
    assert [v for _, _, v in _read(settings, settings.topics.mirror, 1)] == [b"fine"]
