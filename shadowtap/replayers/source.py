"""Records from a confluent-kafka consumer, for the replay engine.

The consumer may be in a group (``shadowtap replay``: shadowtap.replayers.worker subscribes
it) or assigned partitions by hand (no group: a drill reading a time window). Either way
the engine reads it without waiting and pauses and resumes its partitions::

    source = ConsumerSource(consumer)
    source.read(500, engine.accept)   # accept(topic, partition, offset, key, value) per record
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
