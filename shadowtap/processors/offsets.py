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
- shadowtap.processors.holes reads the skipped records back, so the agent processes them
  like any other and the position moves on.
- Faust's consumer commits ``Watermarks``' position instead of its own
  (shadowtap.faust_internals.commit_watermarks).

The replayer keeps another book (shadowtap.replayers.tracker.CommitTracker), because the
two owe different offsets: here every offset from the committed one is owed (Faust's
fetcher can skip a record, so a gap is read back); there only the offsets read are
(librdkafka skips none, and a gap is compaction or a transaction marker).
"""

from __future__ import annotations

from typing import NamedTuple

Partition = tuple[str, int]


class Record(NamedTuple):
    """One captured record as the agent handles it (from Faust, or read back from a hole)."""

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
