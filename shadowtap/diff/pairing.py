"""Pairing results of several targets by record id, on capture time with a grace period.

Results arrive per target, each replayer group at its own pace. A record is complete when
every expected target has answered; it is declared unpaired only once the *slowest* target
has moved past its capture time by the grace period, so a lagging group delays pairing
instead of turning everything unpaired. Progress is the newest capture time seen per target
(results of one group arrive roughly in capture order, as its replayer reads them).

At-least-once delivery can bring several results per (record, target): the first wins and
later ones count as redeliveries, also when they come after the record was completed
(completed ids are remembered for the same grace period).

Pure and in memory: the ``shadowtap diff`` agent keeps one per partition (results are keyed
by record id, so a record's results share a partition) and feeds completed and expired
records to :class:`shadowtap.diff.run.DiffRun`. ``max_pending`` bounds memory when a
target stops answering altogether: the oldest records are then given up as unpaired.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence

from shadowtap.diff.model import Record, Request, Side


class _Pending:
    __slots__ = ("production", "request", "sides")

    def __init__(self, request: Request, production: Side | None) -> None:
        self.request = request
        self.production = production
        self.sides: dict[str, Side] = {}

    def record(self) -> Record:
        return Record(self.request, dict(self.sides), self.production)


class Pairing:
    """Collects each record's results until every target in ``targets`` answered."""

    def __init__(
        self, targets: Sequence[str], *, grace_ms: int = 60_000, max_pending: int = 200_000
    ) -> None:
        if not targets:
            raise ValueError("pairing needs at least one target")
        self.targets = tuple(targets)
        self.grace_ms = grace_ms
        self.max_pending = max_pending
        self.redeliveries: Counter[str] = Counter()
        self.unpaired = 0
        self._progress: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._order: list[tuple[int, str]] = []  # (capture ts, id) of pending records
        self._done: dict[str, int] = {}
        self._done_order: list[tuple[int, str]] = []

    def offer(
        self, request: Request, target: str, side: Side, production: Side | None = None
    ) -> list[Record]:
        """Add one result. Returns the record if this completed it, plus any given up."""
        if request.ts > self._progress.get(target, -1):
            self._progress[target] = request.ts
        if request.id in self._done:
            self.redeliveries[target] += 1
            return []
        entry = self._pending.get(request.id)
        if entry is None:
            entry = self._pending[request.id] = _Pending(request, production)
            heapq.heappush(self._order, (request.ts, request.id))
        elif target in entry.sides:
            self.redeliveries[target] += 1
            return []
        if entry.production is None:
            entry.production = production
        entry.sides[target] = side
        out = []
        if all(t in entry.sides for t in self.targets):
            del self._pending[request.id]
            self._done[request.id] = request.ts
            heapq.heappush(self._done_order, (request.ts, request.id))
            out.append(entry.record())
        while len(self._pending) > self.max_pending:
            out.extend(self._give_up_oldest())
        self._stay_bounded()
        return out

    def expire(self) -> list[Record]:
        """Records the slowest target has passed by the grace period: given up as unpaired."""
        if any(t not in self._progress for t in self.targets):
            return []  # a target that has sent nothing yet has not moved past anything
        cutoff = min(self._progress[t] for t in self.targets) - self.grace_ms
        out = []
        while self._order and self._order[0][0] < cutoff:
            out.extend(self._give_up_oldest())
        while self._done_order and self._done_order[0][0] < cutoff:
            _, done_id = heapq.heappop(self._done_order)
            self._done.pop(done_id, None)
        return out

    def flush(self) -> list[Record]:
        """Every pending record, given up as unpaired (the end of a run)."""
        out = []
        while self._order:
            out.extend(self._give_up_oldest())
        return out

    def _stay_bounded(self) -> None:
        # Completed records leave stale heap entries until expire() passes them; when
        # expire() is not called often enough, drop them (and the oldest completed ids).
        if len(self._order) > 2 * self.max_pending:
            self._order = [(e.request.ts, i) for i, e in self._pending.items()]
            heapq.heapify(self._order)
        while len(self._done) > self.max_pending:
            _, done_id = heapq.heappop(self._done_order)
            self._done.pop(done_id, None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _give_up_oldest(self) -> list[Record]:
        _, record_id = heapq.heappop(self._order)
        entry = self._pending.pop(record_id, None)
        if entry is None:  # completed since it was queued
            return []
        self.unpaired += 1
        return [entry.record()]
