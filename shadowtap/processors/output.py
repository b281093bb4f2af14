"""What the processor writes, sent through librdkafka and acknowledged a batch at a time.

Faust's own producer (aiokafka) builds, compresses and frames every message in Python on the
worker's one thread: with an output record and a dedup changelog write per input record, that
was a third of the worker's time. librdkafka does it in C on its own threads; the worker
only hands messages over. Settings are ``[kafka]``'s, ``kafka.librdkafka`` included.

Messages are grouped in the batch they belong to::

    output = Output(settings.kafka, loop)
    output.send("shadowtap.mirror", key, value, headers, timestamp=env.ts)  # current batch
    batch = output.cut()           # later sends go to a new batch; this one can still grow:
    output.send(topic, key, value, batch=batch)
    batch.seal()
    await batch.done   # once the broker acknowledged every message of the batch; raises
                       # KafkaException if it refused one

The replayer's outbox (shadowtap.replayers.outbox) waits for acks a record at a time and
produces a refused message again, because a request it replayed cannot be taken back; a
batch refused here is processed again from the committed offset instead.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from shadowtap.config import KafkaSettings
from shadowtap.kafka import make_producer, produce

_ANY = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks
# Room for several batches in librdkafka's queue: a full queue makes ``send`` wait.
_QUEUE = {"queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 1_048_576}


class Batch:
    """Counts one batch's messages until each is acknowledged or refused.

    Delivery reports arrive on librdkafka's polling thread; ``done`` is resolved on the
    event loop once the batch is sealed and nothing is pending.
    """

    __slots__ = ("_error", "_lock", "_loop", "_pending", "_sealed", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending = 0
        self._sealed = False
        self._error: KafkaError | Exception | None = None
        self.done: asyncio.Future[None] = loop.create_future()

    def add(self) -> None:
        with self._lock:
            self._pending += 1

    def delivered(self, err: KafkaError | None, _msg: Any = None) -> None:
        """librdkafka's delivery report (any thread)."""
        with self._lock:
            self._pending -= 1
            if err is not None and self._error is None:
                self._error = err
            last = self._sealed and self._pending == 0
        if last:
            self._loop.call_soon_threadsafe(self._resolve)

    def failed(self, exc: Exception) -> None:
        """A message that could not even be queued (event loop thread)."""
        with self._lock:
            self._pending -= 1
            if self._error is None:
                self._error = exc
            last = self._sealed and self._pending == 0
        if last:
            self._resolve()

    def seal(self) -> None:
        """No more messages (event loop thread): resolve now if none is pending."""
        with self._lock:
            self._sealed = True
            last = self._pending == 0
        if last:
            self._resolve()

    def _resolve(self) -> None:
        if self.done.done():
            return
        if isinstance(self._error, KafkaError):
            self.done.set_exception(KafkaException(self._error))
        elif self._error is not None:
            self.done.set_exception(self._error)
        else:
            self.done.set_result(None)


class Output:
    """One librdkafka producer for the worker's lifetime, with its polling thread."""

    def __init__(self, kafka: KafkaSettings, loop: asyncio.AbstractEventLoop) -> None:
        queue = {k: v for k, v in _QUEUE.items() if k not in kafka.librdkafka}
        self._producer = make_producer(kafka, queue)
        self._loop = loop
        self._batch = Batch(loop)
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="shadowtap-output", daemon=True)
        self._poller.start()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        partition: int | None = None,
        batch: Batch | None = None,
        timestamp: int = 0,
    ) -> None:
        """Queue one message in ``batch`` (the current one if None), its Kafka timestamp
        ``timestamp`` (epoch ms; 0: now).

        Waits while librdkafka's queue is full, which takes a broker gone for minutes: the
        agent has at most two batches unacknowledged, far below the queue's size.
        """
        batch = batch or self._batch
        batch.add()
        try:
            produce(
                self._producer,
                topic,
                value,
                key,
                headers=headers,
                partition=_ANY if partition is None else partition,
                timestamp=timestamp,
                on_delivery=batch.delivered,
            )
        except KafkaException as exc:  # refused before sending (too large, unknown topic)
            batch.delivered(exc.args[0])
        except Exception as exc:  # a bad argument: its batch fails, the worker goes on
            batch.failed(exc)

    def cut(self) -> Batch:
        """The current batch, for its owner to finish and seal; later sends go to a new one."""
        batch, self._batch = self._batch, Batch(self._loop)
        return batch

    def seal(self) -> asyncio.Future[None]:
        """Cut and seal the current batch: the future resolves once all of it is acked."""
        batch = self.cut()
        batch.seal()
        return batch.done

    def close(self, timeout: float = 10.0) -> None:
        """Stop polling and wait up to ``timeout`` for what is still queued."""
        self._closed.set()
        self._poller.join(timeout)
        self._producer.flush(timeout)

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)
