"""What a delivery leaves behind: its result, a DLQ record if it failed; acked, then finished.

Each record's messages (its result on ``topics.results`` when ``replayer.results`` is on, a
DLQ record on ``topics.dlq`` when it could not be decoded or delivered) are produced through
librdkafka. Once Kafka acknowledged all of them the record is finished (``finish(item)``:
the engine marks it in the offset book, whose positions are what gets committed). A message
Kafka refuses is produced again: the request was replayed already and cannot be taken
back, so the record must not be read again. Delivery reports are served by ``poll()`` on
the engine's loop, so counting needs no lock::

    outbox = Outbox(settings, target="staging", finish=engine_finish)
    outbox.producer = make_producer(settings.kafka, {"linger.ms": 10})   # Engine.open does
    outbox.publish(item, env, delivery)           # its result (or finished at once)
    outbox.to_dlq(item, "timeout", "…", attempts=3)
    outbox.poll()                                 # on the loop: reports → finish(item)

The processor acknowledges its output a batch at a time instead
(shadowtap.processors.output): a batch refused there is simply processed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from shadowtap import dlq, results
from shadowtap.config import Settings
from shadowtap.envelope import Envelope
from shadowtap.kafka import produce
from shadowtap.replayers.lanes import Item
from shadowtap.replayers.rewrite import incomplete
from shadowtap.results import Delivery

log = logging.getLogger("shadowtap.replayer")


class Outbox:
    """Results and DLQ records, each record finished once Kafka has all of its own."""

    def __init__(self, settings: Settings, target: str, finish: Callable[[Item], None]) -> None:
        self._results = settings.replayer.results
        self._group = settings.replayer.group
        self._results_topic = settings.topics.results
        self._dlq_topic = settings.topics.dlq
        self._target = target
        self._finish = finish
        self.producer: Any = None  # librdkafka's: Engine.open makes one unless set
        self.unacked = 0  # messages produced and not acknowledged yet

    def result(self, env: Envelope, delivery: Delivery) -> results.Result:
        """The result record of delivering ``env``."""
        return results.Result.of(
            delivery,
            id=env.id,
            target=self._target,
            group=self._group,
            ts=time.time_ns() // 1_000_000,
            method=env.method,
            path=env.path,
            incomplete=incomplete(env) or "",
        )

    def publish(self, item: Item, env: Envelope, delivery: Delivery) -> None:
        """Produce the record's result; without results, it is finished once its DLQ
        record (if any) is acknowledged."""
        if not self._results:
            if not item.acks:
                self._finish(item)
            return
        self._produce(item, self._results_topic, results.encode(self.result(env, delivery)), None)

    def to_dlq(self, item: Item, reason: str, error: str, attempts: int) -> None:
        letter = dlq.DeadLetter(
            dlq.REPLAYER,
            reason,
            error,
            item.tp[0],
            item.tp[1],
            item.offset,
            target=self._target,
            group=self._group,
            attempts=attempts,
        )
        self._produce(item, self._dlq_topic, item.value, dlq.headers(letter))

    def _produce(
        self, item: Item, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> None:
        item.acks += 1
        self.unacked += 1
        key = item.env.id.encode() if item.env is not None else item.key

        def acked(err: Any, _msg: Any) -> None:
            self.unacked -= 1
            item.acks -= 1
            if err is not None:
                log.warning("could not write to %s (%s); retrying", topic, err)
                self._produce(item, topic, value, headers)
            elif item.acks == 0:
                self._finish(item)

        produce(self.producer, topic, value, key, headers=headers, on_delivery=acked)

    def poll(self, timeout: float = 0) -> None:
        """Serve delivery reports (on the engine's loop)."""
        self.producer.poll(timeout)

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` for every message on its way to Kafka to be acknowledged."""
        self.producer.flush(timeout)
