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

A result holds the target's answer scrubbed with the processor's scrubber and keys (staging
data is often a copy of production's; values of the scrubbed request it answers are kept, so
echoed pseudonyms still compare equal) and the production response the record was captured
with, cut to ``result_body_limit`` (shadowtap.results).

The processor acknowledges its output a batch at a time instead
(shadowtap.processors.output): a batch refused there is simply processed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shadowtap import dlq, results
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, Response
from shadowtap.errors import ScrubError
from shadowtap.kafka import produce
from shadowtap.replayers.lanes import Item
from shadowtap.replayers.rewrite import incomplete
from shadowtap.results import Delivery
from shadowtap.scrub.scrubber import Scrubber

log = logging.getLogger("shadowtap.replayer")


class Outbox:
    """Results and DLQ records, each record finished once Kafka has all of its own."""

    def __init__(self, settings: Settings, target: str, finish: Callable[[Item], None]) -> None:
        self._results = settings.replayer.results
        self._group = settings.replayer.group
        self._results_topic = settings.topics.results
        self._dlq_topic = settings.topics.dlq
        self._target = target
        self._limit = settings.replayer.result_body_limit
        # The processor's scrubber and keys, so pseudonyms in both sides' answers agree.
        self._scrubber = Scrubber.from_settings(settings.processor) if self._results else None
        self._finish = finish
        self.producer: Any = None  # librdkafka's: Engine.open makes one unless set
        self.unacked = 0  # messages produced and not acknowledged yet
        self.unscrubbed = 0  # target responses that could not be scrubbed (kept without them)

    def result(self, env: Envelope, delivery: Delivery) -> results.Result:
        """The result record of delivering ``env``: the target's answer, scrubbed, and the
        production response ``env`` was captured with, cut to ``result_body_limit``."""
        production = env.response
        return results.Result.of(
            self._scrubbed(delivery, env),
            id=env.id,
            target=self._target,
            group=self._group,
            ts=time.time_ns() // 1_000_000,
            method=env.method,
            path=env.path,
            incomplete=incomplete(env) or "",
            captured=env.ts,
            production=None if production is None else results.bounded(production, self._limit),
        )

    def _scrubbed(self, delivery: Delivery, env: Envelope) -> Delivery:
        """The target's answer with headers and body scrubbed like the mirror: staging data
        is often a copy of production's. Values of the (scrubbed) request ``env`` are kept:
        echoed pseudonyms then still equal production's. A body that cannot be scrubbed is
        not kept."""
        if delivery.status is None or self._scrubber is None:
            return delivery
        # The sender inflated the body already: the header no longer says what it holds.
        headers = [(k, v) for k, v in delivery.headers if k.lower() != "content-encoding"]
        answer = Response(delivery.status, headers, delivery.body)
        try:
            self._scrubber.scrub_response(answer, clean=env)
        except ScrubError as exc:
            log.warning("could not scrub a response of %s (%s): not kept", self._target, exc)
            self.unscrubbed += 1
            return replace(delivery, headers=[], body=b"", truncated=True)
        return replace(delivery, headers=answer.headers, body=answer.body)

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
