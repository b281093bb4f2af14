"""Which offsets may be committed: the highest one below which every record is done.

Records finish out of order (different keys run in parallel), but a Kafka commit says
"everything before this offset is done". Per partition we keep the offsets handed out, in
the order they were read, and a set of finished ones; the commit position advances over the
finished prefix only. Offsets need not be contiguous (compaction, transaction markers): only
offsets actually read are tracked. O(1) amortised per record.

A position handed to an asynchronous commit is not yet the group's: the commit can still be
refused (a rebalance bumped the generation), so what was sent and what the group
acknowledged are kept apart. The timer sends each position once; a refusal makes it due
again; a partition that leaves commits everything not yet acknowledged.

The processor's book (shadowtap.processors.offsets.Watermarks) owes every offset from the
committed one, because Faust's fetcher can skip a record; librdkafka skips none, so here only
the offsets read are owed.
"""

from __future__ import annotations

from collections import deque

TopicPartition = tuple[str, int]


class _Partition:
    __slots__ = ("acked", "done", "pending", "position", "sent")

    def __init__(self) -> None:
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.position: int | None = None  # next offset to commit (last finished prefix + 1)
        self.sent: int | None = None  # the position last handed to a commit
        self.acked: int | None = None  # the position the group last acknowledged


class CommitTracker:
    """Offsets read and finished per partition; what to commit next."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}

    def assign(self, tp: TopicPartition) -> None:
        self._parts.setdefault(tp, _Partition())

    def revoke(self, tp: TopicPartition) -> None:
        """Forget a partition; records of it still in flight no longer count."""
        self._parts.pop(tp, None)

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self._parts

    def add(self, tp: TopicPartition, offset: int) -> None:
        """A record was read; offsets of one partition arrive in increasing order."""
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        part.pending.append(offset)

    def done(self, tp: TopicPartition, offset: int) -> bool:
        """A record is finished; return False when its partition is no longer ours."""
        part = self._parts.get(tp)
        if part is None:
            return False
        if part.pending and part.pending[0] == offset:
            part.pending.popleft()
            part.position = offset + 1
            while part.pending and part.pending[0] in part.done:
                head = part.pending.popleft()
                part.done.discard(head)
                part.position = head + 1
        else:
            part.done.add(offset)
        return True

    def pending(self, tp: TopicPartition | None = None) -> int:
        """Records read and not finished (in one partition, or in all)."""
        parts = self._parts.values() if tp is None else [self._parts.get(tp) or _Partition()]
        return sum(len(p.pending) for p in parts)

    def position(self, tp: TopicPartition) -> int | None:
        """The offset to commit for ``tp``: every record before it is finished."""
        part = self._parts.get(tp)
        return None if part is None else part.position

    def finished_ahead(self, tp: TopicPartition) -> set[int]:
        """Offsets finished beyond the position (behind a record still unfinished)."""
        part = self._parts.get(tp)
        return set() if part is None else set(part.done)

    def to_commit(
        self, only: list[TopicPartition] | None = None, *, unacknowledged: bool = False
    ) -> list[tuple[str, int, int]]:
        """``(topic, partition, offset)`` for partitions whose position moved since it was
        last :meth:`sent` (or, with ``unacknowledged``, since the group acknowledged one)."""
        out = []
        for tp, part in self._parts.items():
            if only is not None and tp not in only:
                continue
            last = part.acked if unacknowledged else part.sent
            if part.position is not None and part.position != last:
                out.append((tp[0], tp[1], part.position))
        return out

    def sent(self, offsets: list[tuple[str, int, int]]) -> None:
        """These positions were handed to a commit: the timer does not send them again."""
        for topic, partition, offset in offsets:
            part = self._parts.get((topic, partition))
            if part is not None:
                part.sent = offset

    def acknowledged(self, offsets: list[tuple[str, int, int]]) -> None:
        """The group took these positions."""
        for topic, partition, offset in offsets:
            part = self._parts.get((topic, partition))
            if part is not None and (part.acked is None or offset > part.acked):
                part.acked = offset

    def refused(self, offsets: list[tuple[str, int, int]]) -> None:
        """The group refused these positions: the next timer commit sends them again."""
        for topic, partition, offset in offsets:
            part = self._parts.get((topic, partition))
            if part is not None and part.sent == offset:
                part.sent = part.acked
