"""Records from confluent-kafka consumers, for the replay engine.

The consumer may be in a group (``shadowtap replay``: shadowtap.replayers.worker subscribes
it) or assigned partitions by hand (no group: a drill reading a time window). Either way
the engine reads it without waiting and pauses and resumes its partitions::

    source = ConsumerSource(consumer)
    source.read(500, engine.accept)   # accept(topic, partition, offset, key, value) per record

A worker reads two topics through two consumers, each in a group of its own (the mirror
and its group's retry topic, see shadowtap.replayers.worker); ``ConsumerSources`` reads
them as one source::

    source = ConsumerSources({mirror: consumer, retry_topic: retry_consumer})
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shadowtap.replayers.lanes import TP

log = logging.getLogger("shadowtap.replayer")

Accept = Callable[[str, int, int, bytes | None, bytes], None]


class ConsumerSource:
    """A consumer read at once (``consume(n, 0)``); pause and resume never raise."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def read(self, limit: int, accept: Accept) -> int:
        """Hand up to ``limit`` records already fetched to ``accept``; return how many
        messages came (errors and end-of-partition events included)."""
        try:
            messages = self.consumer.consume(limit, 0)
        except KafkaException as exc:
            log.warning("consume failed: %s", exc)
            return 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
                continue
            accept(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value() or b"")
        return len(messages)

    def pause_all(self) -> None:
        with contextlib.suppress(KafkaException):
            self.consumer.pause(self.consumer.assignment())

    def resume_all(self, keep_paused: Collection[TP]) -> None:
        with contextlib.suppress(KafkaException):
            self.consumer.resume(
                [p for p in self.consumer.assignment() if (p.topic, p.partition) not in keep_paused]
            )

    def pause(self, tp: TP) -> None:
        with contextlib.suppress(KafkaException):
            self.consumer.pause([TopicPartition(*tp)])

    def resume(self, tp: TP) -> None:
        with contextlib.suppress(KafkaException):
            self.consumer.resume([TopicPartition(*tp)])


class ConsumerSources:
    """Consumers of different topics read as one source; each topic is paused and resumed
    through its own consumer.

    Each read starts with the next consumer in turn, so every consumer is read (and its
    rebalance callbacks served) at least every other read, however busy the others are.
    """

    def __init__(self, by_topic: dict[str, Any]) -> None:
        self._by_topic = {topic: ConsumerSource(c) for topic, c in by_topic.items()}
        self._sources = list({id(s.consumer): s for s in self._by_topic.values()}.values())
        self._turn = 0

    def read(self, limit: int, accept: Accept) -> int:
        self._turn = (self._turn + 1) % len(self._sources)
        read = 0
        for source in self._sources[self._turn :] + self._sources[: self._turn]:
            if read >= limit:
                break
            read += source.read(limit - read, accept)
        return read

    def pause_all(self) -> None:
        for source in self._sources:
            source.pause_all()

    def resume_all(self, keep_paused: Collection[TP]) -> None:
        for source in self._sources:
            source.resume_all(keep_paused)

    def pause(self, tp: TP) -> None:
        source = self._by_topic.get(tp[0])
        if source is not None:
            source.pause(tp)

    def resume(self, tp: TP) -> None:
        source = self._by_topic.get(tp[0])
        if source is not None:
            source.resume(tp)
