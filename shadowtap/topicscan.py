"""Reading a topic up to its end without joining a consumer group.

``scan`` yields every record of a topic up to each partition's end offset when it was
called (from the beginning, a time or given offsets); nothing is committed. The DLQ tools
(shadowtap.deadletters, shadowtap.redrive) read the DLQ, the redrive markers and the redrive
destinations this way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, TopicPartition

from shadowtap.config import KafkaSettings
from shadowtap.errors import BrokerError
from shadowtap.kafka import make_consumer

# A consumer group id is required by librdkafka; it is never joined (partitions are assigned).
_READER_GROUP = "shadowtap-dlq-tools"
# What a partition answers for a moment after its topic was created or its leader moved.
_SETTLING = frozenset(
    {
        RdKafkaError.NOT_LEADER_FOR_PARTITION,
        RdKafkaError.LEADER_NOT_AVAILABLE,
        RdKafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def scan(
    kafka: KafkaSettings,
    topic: str,
    *,
    since_ms: int | None = None,
    starts: dict[int, int] | None = None,
    partitions: Iterable[int] | None = None,
    stops: dict[int, int] | None = None,
    timeout_s: float = 15.0,
) -> Iterator[Any]:
    """Every record of ``topic`` up to each partition's end offset when called (or up to
    ``stops[partition]``, exclusive, when that is earlier).

    From the beginning, or from the first record at or after ``since_ms``, or from
    ``starts[partition]``. Raises BrokerError when the topic does not exist or reading stalls
    for ``timeout_s``.
    """
    consumer = make_consumer(kafka, _READER_GROUP, {"enable.partition.eof": True})
    try:
        ends = _ends(consumer, topic, timeout_s)
        if stops is not None:
            ends = {p: min(end, stops.get(p, end)) for p, end in ends.items()}
        wanted = sorted(ends if partitions is None else set(partitions) & set(ends))
        begins = {p: _watermarks(consumer, topic, p, timeout_s)[0] for p in wanted}
        if starts is not None:
            begins = {p: max(begins[p], starts.get(p, begins[p])) for p in wanted}
        if since_ms is not None and wanted:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, since_ms) for p in wanted], timeout_s
            )
            for tp in found:
                # -1: no record that new in this partition
                begins[tp.partition] = ends[tp.partition] if tp.offset < 0 else tp.offset
        pending = {p for p in wanted if begins[p] < ends[p]}
        if not pending:
            return
        consumer.assign([TopicPartition(topic, p, begins[p]) for p in sorted(pending)])
        quiet_since = time.monotonic()
        while pending:
            # consume() waits its whole timeout unless 500 records are there: keep it short
            messages: list[Any] = consumer.consume(500, 0.05)
            if not messages and time.monotonic() - quiet_since > timeout_s:
                raise BrokerError(f"reading {topic} stalled: nothing for {timeout_s:.0f}s")
            for msg in messages:
                quiet_since = time.monotonic()
                err = msg.error()
                p = msg.partition()
                if err is not None:
                    if err.code() == RdKafkaError._PARTITION_EOF:
                        pending.discard(p)
                        continue
                    raise BrokerError(f"reading {topic}[{p}]: {err}")
                if p not in pending or msg.offset() >= ends[p]:
                    pending.discard(p)
                    continue
                yield msg
                if msg.offset() >= ends[p] - 1:
                    pending.discard(p)
    except KafkaException as exc:
        raise BrokerError(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()


def end_offsets(kafka: KafkaSettings, topic: str, timeout_s: float = 15.0) -> dict[int, int]:
    """Each partition's end offset (the offset its next record will get)."""
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        return _ends(consumer, topic, timeout_s)
    except KafkaException as exc:
        raise BrokerError(f"reading the end offsets of {topic}: {exc}") from exc
    finally:
        consumer.close()


def topic_exists(kafka: KafkaSettings, topic: str, timeout_s: float = 15.0) -> bool:
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        found = consumer.list_topics(topic, timeout_s).topics.get(topic)
        return found is not None and found.error is None
    except KafkaException as exc:
        raise BrokerError(f"Kafka did not answer within {timeout_s:.0f}s: {exc}") from exc
    finally:
        consumer.close()


def _ends(consumer: Any, topic: str, timeout_s: float) -> dict[int, int]:
    found = consumer.list_topics(topic, timeout_s).topics.get(topic)
    if found is None or found.error is not None:
        raise BrokerError(
            f"topic {topic} does not exist (create it with `shadowtap topics create`)"
        )
    return {p: _watermarks(consumer, topic, p, timeout_s)[1] for p in found.partitions}


def watermarks(
    kafka: KafkaSettings, topic: str, timeout_s: float = 15.0
) -> dict[int, tuple[int, int]]:
    """Each partition's first and end offsets (what retention kept, and the next offset)."""
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        ends = _ends(consumer, topic, timeout_s)
        return {p: _watermarks(consumer, topic, p, timeout_s) for p in sorted(ends)}
    except KafkaException as exc:
        raise BrokerError(f"reading the offsets of {topic}: {exc}") from exc
    finally:
        consumer.close()


def offsets_at(
    kafka: KafkaSettings, topic: str, at_ms: int, timeout_s: float = 15.0
) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after ``at_ms``
    (-1: none that new)."""
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        parts = sorted(_ends(consumer, topic, timeout_s))
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, at_ms) for p in parts], timeout_s
        )
        return {tp.partition: int(tp.offset) for tp in found}
    except KafkaException as exc:
        raise BrokerError(f"finding times in {topic}: {exc}") from exc
    finally:
        consumer.close()


def _watermarks(consumer: Any, topic: str, partition: int, timeout_s: float) -> tuple[int, int]:
    """A partition's first and end offsets, retried while a new topic's leader settles."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout_s)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            settling = error is not None and (error.code() in _SETTLING or error.retriable())
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
