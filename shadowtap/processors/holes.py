"""The records Faust skipped, found before each record it delivers and read back.

The agent asks ``Holes.before(record)`` for every record Faust hands over. The first record
of a partition starts its watermarks (shadowtap.processors.offsets) at the group's committed
offset, or at a position of this worker's that the group refused at a rebalance
(``resume_at``). A jump between what Faust delivered before and this record is a hole: its
records are read back by offset with a plain consumer outside the group (``HoleReader``)
and handed to the batches ahead of the record, a batch at a time, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shadowtap.config import Settings
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Partition, Record, Watermarks

if TYPE_CHECKING:
    from shadowtap.processors.batches import Batches

log = logging.getLogger(__name__)

_COORDINATOR_BUSY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._WAIT_COORD,
    KafkaError._TIMED_OUT,
}


class Holes:
    """Starts each partition's watermarks and reads back what Faust skipped."""

    def __init__(
        self,
        settings: Settings,
        watermarks: Watermarks,
        batches: Batches,
        metrics: Metrics,
        reader: HoleReader | None = None,
    ) -> None:
        self._settings = settings
        self._watermarks = watermarks
        self._batches = batches
        self._metrics = metrics
        # Made on first use and kept for the process: Faust restarts a crashed agent, and a
        # read cancelled with it may still be running in its thread.
        self.reader = reader
        # Positions finished here whose commit the group refused at a rebalance (the session
        # was lost): a partition assigned back starts from there, not from the group's offset.
        self.resume_at: dict[Partition, int] = {}

    async def before(self, record: Record) -> None:
        """Hand the batches first any records of this partition that Faust skipped.

        A long hole (after a failed batch, say) is read a batch at a time, each sent on
        before the next is read, so memory stays bounded.
        """
        tp = (record.topic, record.partition)
        marks = self._watermarks
        if self.reader is None:
            self.reader = await asyncio.to_thread(
                HoleReader, self._settings, self._settings.processor.group
            )
        if not marks.knows(tp):
            committed = await asyncio.to_thread(self.reader.committed, tp)
            marks.start(tp, max(committed, self.resume_at.pop(tp, committed)))
        hole = marks.see(tp, record.offset)
        if hole is None:
            return
        self._metrics.holes.inc(hole[1] - hole[0])
        total = await self._read_back(tp, *hole)
        log.warning(
            "%s[%d]: offsets %d..%d were not delivered by Faust; read back %d",
            *tp,
            hole[0],
            hole[1] - 1,
            total,
        )

    async def _read_back(self, tp: Partition, lo: int, hi: int) -> int:
        assert self.reader is not None
        marks, batches = self._watermarks, self._batches
        total = 0
        step = max(self._settings.processor.batch_size, 100)
        while lo < hi:
            end = min(hi, lo + step)
            found, covered = await asyncio.to_thread(self.reader.read, tp, lo, end)
            total += len(found)
            for missing in found:
                batches.add(missing, None)
            read = {r.offset for r in found}
            for gone in range(lo, covered):  # deleted by retention meanwhile
                if gone not in read:
                    marks.finish(tp, gone)
            if covered < end:
                # The read timed out: this partition starts over from its committed offset
                # (the rest comes back as a hole with its next record).
                log.warning("%s[%d]: offsets %d..%d not read back in time", *tp, covered, hi - 1)
                marks.forget(tp)
                break
            lo = end
            if batches.full:
                await batches.flush()
                if not marks.knows(tp):
                    break  # that batch failed: the partition starts over anyway
        return total


class HoleReader:
    """Reads records by offset, outside the consumer group; also the group's committed offsets."""

    def __init__(self, settings: Settings, group: str, timeout_s: float = 30.0) -> None:
        from shadowtap.kafka import make_consumer

        # Never subscribes, so it never joins the group or takes partitions from workers.
        self._consumer = make_consumer(settings.kafka, group)
        self._timeout = timeout_s
        # Calls come from asyncio.to_thread; a cancelled caller leaves its thread running.
        self._lock = threading.Lock()

    def committed(self, tp: Partition) -> int:
        """The group's committed offset for ``tp``, else the first offset still in the log."""
        with self._lock:
            return self._committed(tp)

    def _committed(self, tp: Partition) -> int:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                (found,) = self._consumer.committed([TopicPartition(*tp)], timeout=self._timeout)
                break
            except KafkaException as exc:
                # A group's coordinator is still being chosen or loaded: ask again.
                if exc.args[0].code() not in _COORDINATOR_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        if found.offset >= 0:
            return int(found.offset)
        low, _high = self._consumer.get_watermark_offsets(
            TopicPartition(*tp), timeout=self._timeout
        )
        return int(low)

    def read(self, tp: Partition, lo: int, hi: int) -> tuple[list[Record], int]:
        """Records ``lo..hi-1`` that still exist, and the offset up to which the hole is covered.

        Offsets already deleted by retention count as covered; a read that times out covers
        only what arrived, so the commit position stays behind the rest.
        """
        with self._lock:
            return self._read(tp, lo, hi)

    def _read(self, tp: Partition, lo: int, hi: int) -> tuple[list[Record], int]:
        low, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), timeout=self._timeout)
        covered = max(lo, low)
        end = min(hi, high)
        records: list[Record] = []
        if covered >= end:
            return records, hi
        self._consumer.assign([TopicPartition(tp[0], tp[1], covered)])
        deadline = time.monotonic() + self._timeout
        try:
            while covered < end and time.monotonic() < deadline:
                for msg in self._consumer.consume(500, 0.5):
                    offset = msg.offset()
                    if msg.error() or offset is None or not covered <= offset < end:
                        continue
                    records.append(Record(tp[0], tp[1], offset, msg.key(), msg.value()))
                    covered = offset + 1
        finally:
            self._consumer.unassign()
        return records, (hi if covered >= end else covered)

    def close(self) -> None:
        with self._lock:
            self._consumer.close()
