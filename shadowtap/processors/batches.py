"""Records in batches; a batch's records are finished only once its output is acknowledged.

Each record goes through the pipeline as it is added (with scrubber processes, its back half
goes to them: shadowtap.processors.handoff), and what it makes is sent at once into the
batch's output batch (shadowtap.processors.output). A batch closes when ``batch_size``
records are in it or ``batch_within_s`` after it opened (``tick``), and is finished in the
background while the next one fills: its scrubbers' outcomes sent, every message
acknowledged, then its records are finished in the watermarks and their tokens (Faust's
events) handed to ``ack``. One batch at most waits, so batches finish in order.

A batch the broker refuses, or whose scrubber died, is not retried in place: its partitions
are forgotten in the watermarks and start over from the group's committed offset, so the
next record of each finds the batch as a hole and reads it back (shadowtap.processors.holes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.processors.handoff import Chunks, Handoff, abandon, settle
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Record, Watermarks
from shadowtap.processors.output import Batch, Output
from shadowtap.processors.pipeline import Outcome, Pipeline, dlq_headers

log = logging.getLogger(__name__)

Ack = Callable[[Any], Awaitable[None]]


class Batches:
    """The batch filling and the one finishing; what each record's outcome sends."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        metrics: Metrics,
        watermarks: Watermarks,
        *,
        output: Any = None,
        handoff: Handoff | None = None,
    ) -> None:
        self._settings = settings
        self._size = settings.processor.batch_size
        self._pipeline = pipeline
        self._metrics = metrics
        self._watermarks = watermarks
        # librdkafka, made by the agent's shell on first run (it needs the running loop).
        self.output: Output | None = output
        self._handoff = handoff  # None: the whole pipeline runs here
        # How a finished record's token is acknowledged (Faust's stream ack), set when the
        # agent runs; a closing batch keeps the one it was closed with.
        self.ack: Ack | None = None
        self._batch: list[tuple[Record, Any]] = []  # records and their tokens (or None)
        self._opened = 0.0
        self._lock = asyncio.Lock()
        self._closing: asyncio.Future[None] | None = None  # the batch waiting for its acks

    @property
    def full(self) -> bool:
        return len(self._batch) >= self._size

    def add(self, record: Record, token: Any) -> None:
        """Run the pipeline on ``record`` and send its outcome into the current batch."""
        if not self._batch:
            self._opened = time.monotonic()
        self._batch.append((record, token))
        if self._handoff is None:
            self._settle(record, self._pipeline.process(record.value, record.key))
            return
        started = self._pipeline.front(record.value, record.key)
        if isinstance(started, Outcome):
            self._settle(record, started)
            return
        env, timings = started
        assert record.value is not None  # it decoded
        self._handoff.add(record, (record.value, env.meta, timings))

    def _settle(self, record: Record, outcome: Outcome, batch: Batch | None = None) -> None:
        self._metrics.record(outcome)
        if outcome.kind != "drop":
            self._send(record, outcome, batch)

    def _send(self, record: Record, outcome: Outcome, batch: Batch | None = None) -> None:
        """Queue one record for its output topic or the DLQ, in ``batch`` or the current one."""
        assert self.output is not None
        if outcome.kind == "out":
            assert outcome.topic is not None
            # Stamped with the capture time, so offsets_for_times finds capture time (drills).
            self.output.send(
                outcome.topic,
                record.key,
                outcome.value,
                outcome.headers,
                batch=batch,
                timestamp=outcome.ts,
            )
            return
        log.warning(
            "DLQ %s at %s[%d]@%d: %s",
            outcome.reason,
            record.topic,
            record.partition,
            record.offset,
            outcome.error[:200],
        )
        headers = dlq_headers(outcome, record.topic, record.partition, record.offset)
        value = record.value if record.value is not None else b""
        self.output.send(self._settings.topics.dlq, record.key, value, headers, batch=batch)

    async def flush(self) -> None:
        """Close the batch and wait until it is acknowledged (or starts over)."""
        await self.close()
        if self._closing is not None:
            await asyncio.wait([self._closing])

    async def close(self) -> None:
        """Close the batch: it is finished in the background while the next one fills.

        One batch at most waits for its scrubbers and acks: the one before it must be done,
        so batches finish in order.
        """
        async with self._lock:
            if self._closing is not None:
                await asyncio.wait([self._closing])  # it never raises but when cancelled
                self._closing = None
            if not self._batch:
                return
            items, self._batch = self._batch, []
            chunks = self._handoff.cut() if self._handoff is not None else []
            # Its own output batch from here on: a batch that fails takes nothing of the
            # next one's with it (which would then be acked without its messages).
            assert self.output is not None and self.ack is not None
            out = self.output.cut()
            self._closing = asyncio.ensure_future(self._finish(items, chunks, out, self.ack))

    async def _finish(
        self, items: list[tuple[Record, Any]], chunks: Chunks, out: Batch, ack: Ack
    ) -> None:
        """Send what the scrubbers made of the batch, wait for every ack, then ack its tokens."""
        try:
            await settle(chunks, lambda record, outcome: self._settle(record, outcome, out))
            out.seal()
            await out.done
        except Exception as exc:
            abandon(chunks)
            self._start_over(items, exc)
            return
        except BaseException:  # cancelled: what was in flight is not known
            abandon(chunks)
            self._start_over(items, None)
            raise
        for record, _ in items:
            self._watermarks.finish((record.topic, record.partition), record.offset)
        try:
            for _, token in items:
                if token is not None:
                    await ack(token)
        except Exception:  # Faust's books only: the offsets committed are the watermarks'
            log.exception("acking a finished batch in Faust failed")

    def _start_over(self, items: list[tuple[Record, Any]], exc: Any) -> None:
        """A batch was not acknowledged: its partitions go back to their committed offsets."""
        partitions = sorted({(r.topic, r.partition) for r, _ in items})
        for tp in partitions:
            self._watermarks.forget(tp)
        if exc is not None:
            self._metrics.send_failures.inc()
            log.error(
                "a batch of %d records was not acknowledged (%r); %s will be read again "
                "from the committed offsets",
                len(items),
                exc,
                ", ".join(f"{t}[{n}]" for t, n in partitions),
            )

    async def tick(self) -> None:
        """Close a batch open for ``batch_within_s``: a quiet stream still gets its last
        records acked (and their offsets committed). Runs until cancelled."""
        within = self._settings.processor.batch_within_s
        while True:
            await asyncio.sleep(within)
            if self._batch and time.monotonic() - self._opened >= within:
                await self.close()

    def cancel(self) -> None:
        """The agent stops: the batch finishing is cancelled (its partitions start over)."""
        if self._closing is not None:
            self._closing.cancel()
