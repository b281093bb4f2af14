"""An offset is committed only when every record before it was processed, whatever Faust drops.

faust-streaming (0.15) can lose a record between its fetcher and the agent: when a rebalance
or a table recovery suspends the flow while the fetcher is handing over a batch, the record
is not delivered but the partition's read offset moves past it, and a seek racing with that
batch makes the re-fetched copy look old, so it is skipped too. Faust's commit then steps
over a one-record hole (``Consumer._new_offset`` only refuses holes wider than one), and the
record is gone for good. So the processor keeps its own books:

- ``Watermarks`` follows each partition from the offset the group had committed: every
  record the agent sees and every record it finishes. A jump in what it sees is a hole; the
  commit position moves only over finished records, never over a hole.
- ``HoleReader`` reads the skipped records back with a plain consumer outside the group, so
  the agent processes them like any other and the position moves on.
- Faust's consumer commits ``Watermarks``' position instead of its own
  (shadowtap.processors.faust_internals.commit_watermarks).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shadowtap.config import Settings

log = logging.getLogger(__name__)

Partition = tuple[str, int]

_COORDINATOR_BUSY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._WAIT_COORD,
    KafkaError._TIMED_OUT,
}


class Record(NamedTuple):
    """One captured record read back from a hole."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Books:
    __slots__ = ("done", "due", "position")

    def __init__(self, start: int) -> None:
        self.position = start  # next offset to commit: everything before it is finished
        self.due = start  # next offset the agent should see
        self.done: set[int] = set()


class Watermarks:
    """Per partition: where processing started, what was seen, what is finished."""

    def __init__(self) -> None:
        self._books: dict[Partition, _Books] = {}

    def reset(self) -> None:
        """After a rebalance Faust seeks each partition back to its committed offset."""
        self._books.clear()

    def forget(self, tp: Partition) -> None:
        """Drop ``tp``'s books: its next record starts them again from the committed offset,
        so whatever was not finished shows up as a hole and is read back."""
        self._books.pop(tp, None)

    def knows(self, tp: Partition) -> bool:
        return tp in self._books

    def start(self, tp: Partition, committed: int) -> None:
        """Begin following ``tp`` where every record before is finished: the group's
        committed offset (or the log start), or a position of this worker's it refused."""
        self._books[tp] = _Books(committed)

    def see(self, tp: Partition, offset: int) -> tuple[int, int] | None:
        """The agent got ``offset``; return the hole ``[lo, hi)`` it skipped, if any."""
        books = self._books[tp]
        hole = (books.due, offset) if offset > books.due else None
        books.due = max(books.due, offset + 1)
        return hole

    def finish(self, tp: Partition, offset: int) -> None:
        """A record's output is acknowledged (or it needed none)."""
        books = self._books.get(tp)
        if books is None or offset < books.position:
            return  # a partition no longer ours, or a redelivery of a finished record
        books.done.add(offset)
        while books.position in books.done:
            books.done.discard(books.position)
            books.position += 1

    def finished(self, tp: Partition, offset: int) -> bool:
        """``offset`` was finished already: a record Faust delivers again after a seek."""
        books = self._books.get(tp)
        return books is not None and (offset < books.position or offset in books.done)

    def position(self, tp: Partition) -> int | None:
        books = self._books.get(tp)
        return None if books is None else books.position


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
