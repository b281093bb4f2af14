"""Produce and consume through the real local Apache Kafka broker."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from shadowtap.config import KafkaSettings, Settings
from shadowtap.envelope import Envelope, decode, encode, kafka_headers
from shadowtap.kafka import create_topics, describe_topics, make_consumer, make_producer


def _produce(kafka: KafkaSettings, topic: str, envelopes: list[Envelope]) -> None:
    producer = make_producer(kafka)
    for env in envelopes:
        producer.produce(topic, encode(env), key=env.id.encode(), headers=kafka_headers(env))
    assert producer.flush(30) == 0


def _drain(consumer: Consumer, want: int, deadline_s: float = 60) -> list[Envelope]:
    out: list[Envelope] = []
    deadline = time.monotonic() + deadline_s
    while len(out) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        out.append(decode(msg.value()))
        consumer.store_offsets(msg)
    return out


def test_topics_create_is_idempotent_and_describe_shows_configuration(settings: Settings) -> None:
    first = create_topics(settings)
    assert set(first.values()) == {"created"}
    second = create_topics(settings)
    assert set(second.values()) == {"exists"}
    infos = describe_topics(settings)
    assert all(info is not None for info in infos)
    mirror = next(i for i in infos if i is not None and i.name == settings.topics.mirror)
    assert mirror.partitions == 3
    assert mirror.retention_ms == int(settings.topics.mirror_retention_hours * 3_600_000)


def test_envelopes_round_trip_through_the_broker(
    settings: Settings, unique_name: Callable[[str], str]
) -> None:
    create_topics(settings)
    sent = [
        Envelope(
            method="POST", path=f"/orders/{i}", headers=[("X-N", str(i))], body=bytes([i]) * 10
        )
        for i in range(50)
    ]
    _produce(settings.kafka, settings.topics.captured, sent)
    consumer = make_consumer(settings.kafka, unique_name("group"))
    consumer.subscribe([settings.topics.captured])
    try:
        got = _drain(consumer, len(sent))
    finally:
        consumer.close()
    assert sorted(got, key=lambda e: e.path) == sorted(sent, key=lambda e: e.path)


def test_two_consumers_in_one_group_share_the_partitions(
    settings: Settings, unique_name: Callable[[str], str]
) -> None:
    create_topics(settings)
    topic, group = settings.topics.captured, unique_name("group")
    consumers = [
        make_consumer(settings.kafka, group, {"session.timeout.ms": 6000}) for _ in range(2)
    ]
    for consumer in consumers:
        consumer.subscribe([topic])
    try:
        # Poll both until the group has settled with every partition assigned once.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.2)
            owned = [{tp.partition for tp in c.assignment()} for c in consumers]
            if all(owned) and owned[0] | owned[1] == {0, 1, 2} and not owned[0] & owned[1]:
                break
        assert all(owned), f"each consumer owns partitions: {owned}"
        assert owned[0] | owned[1] == {0, 1, 2} and not owned[0] & owned[1]

        sent = [Envelope(method="GET", path=f"/p/{i}") for i in range(60)]
        _produce(settings.kafka, topic, sent)
        seen: list[list[Envelope]] = [[], []]
        deadline = time.monotonic() + 60
        while sum(map(len, seen)) < len(sent) and time.monotonic() < deadline:
            for i, consumer in enumerate(consumers):
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    assert msg.partition() in owned[i]
                    seen[i].append(decode(msg.value()))
                    consumer.store_offsets(msg)
        assert all(seen), "both consumers received records"
        assert sorted(e.id for e in seen[0] + seen[1]) == sorted(e.id for e in sent)
        for consumer in consumers:
            consumer.commit(asynchronous=False)
    finally:
        for consumer in consumers:
            consumer.close()


def test_committed_offsets_resume_the_group(
    settings: Settings, unique_name: Callable[[str], str]
) -> None:
    create_topics(settings)
    topic, group = settings.topics.captured, unique_name("group")
    _produce(settings.kafka, topic, [Envelope(method="GET", path=f"/a/{i}") for i in range(10)])
    consumer = make_consumer(settings.kafka, group)
    consumer.subscribe([topic])
    first = _drain(consumer, 10)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert len(first) == 10

    _produce(settings.kafka, topic, [Envelope(method="GET", path=f"/b/{i}") for i in range(5)])
    consumer = make_consumer(settings.kafka, group)
    consumer.subscribe([topic])
    try:
        second = _drain(consumer, 5)
        time.sleep(1)  # nothing more should arrive: the first ten were committed
        assert consumer.poll(1) is None
    finally:
        consumer.close()
    assert sorted(e.path for e in second) == [f"/b/{i}" for i in range(5)]
    inspector = make_consumer(settings.kafka, group)
    try:
        committed = inspector.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        inspector.close()
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == 10
