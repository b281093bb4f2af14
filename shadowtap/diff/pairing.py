"""Pairing results of several targets by record id, on capture time with a grace period.

Results arrive per target, each replayer group at its own pace. A record is complete when
every expected target has answered; it is declared unpaired only once the *slowest* target
has moved past its capture time by the grace period, so a lagging group delays pairing
instead of turning everything unpaired. Progress is the newest capture time seen per target
(results of one group arrive roughly in capture order, as its replayer reads them).

At-least-once delivery can bring several results per (record, target): the first wins and
later ones count as redeliveries, also when they come after the record was completed
(completed ids are remembered for the same grace period).

The state lives in ``store``, a mapping keyed by record id, one JSON-able entry per record:
``{"ts": capture ms, "p": partition, "sides": {target: payload}}`` while it waits, ``{"ts",
"p", "done": true}`` once complete. An entry is written back whole after every change, so a
Faust table as the store keeps the pairing in its changelog (the ``shadowtap diff serve``
agent: one Pairing per partition, results keyed by record id, so a record's results share a
partition) and a restarted worker picks up where the last left off (:meth:`recover`). The
capture-time windows are kept here, not by Faust's windowed tables: those expire windows by
the wall clock, which would turn a replay of last week's traffic all "unpaired" at once.
``shadowtap diff run`` uses a plain dict. The per-target progress is kept in the store too,
under ``progress_key(partition)``, written when it moved by a second or more, so a restarted
worker still gives up records a target that has finished will never answer. Only the heaps
that order entries by capture time are in memory, rebuilt by :meth:`recover`.

``max_pending`` bounds memory when a target stops answering altogether: the oldest records
are then given up as unpaired.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import MutableMapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

P = TypeVar("P")
_PROGRESS_STEP_MS = 1_000  # progress is written back when it moved by this much


def progress_key(partition: int) -> str:
    """The store key of a partition's progress (record ids never start with a space)."""
    return f" progress/{partition}"


class Group(NamedTuple, Generic[P]):
    """A record's results: ``payloads`` by target (all of them, or those that came)."""

    id: str
    ts: int
    payloads: dict[str, P]


class Pairing(Generic[P]):
    """Collects each record's payloads until every target in ``targets`` answered."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        grace_ms: int = 60_000,
        max_pending: int = 200_000,
        store: MutableMapping[str, Any] | None = None,
        partition: int = 0,
    ) -> None:
        if not targets:
            raise ValueError("pairing needs at least one target")
        self.targets = tuple(targets)
        self.grace_ms = grace_ms
        self.max_pending = max_pending
        self.partition = partition
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.redeliveries: Counter[str] = Counter()
        self.unpaired = 0
        self._progress: dict[str, int] = {}
        self._saved: dict[str, int] = {}  # the progress as last written to the store
        self._pending = 0
        self._order: list[tuple[int, str]] = []  # (capture ts, id) of waiting records
        self._done_order: list[tuple[int, str]] = []  # (capture ts, id) of completed ones
        self._done = 0

    def recover(self) -> int:
        """Rebuild the order of this partition's entries found in the store (after a restart
        or a rebalance); returns how many records are waiting."""
        self._order, self._done_order = [], []
        saved = self.store.get(progress_key(self.partition))
        if saved:
            for target, ts in saved["progress"].items():
                self._progress[target] = max(self._progress.get(target, -1), int(ts))
            self._saved = dict(self._progress)
        for record_id, entry in list(self.store.items()):
            # Records of this partition only: not another's, nor the progress entry.
            if "ts" not in entry or entry.get("p", 0) != self.partition:
                continue
            heap = self._done_order if entry.get("done") else self._order
            heap.append((int(entry["ts"]), record_id))
        heapq.heapify(self._order)
        heapq.heapify(self._done_order)
        self._pending, self._done = len(self._order), len(self._done_order)
        return self._pending

    def offer(self, record_id: str, ts: int, target: str, payload: P) -> list[Group[P]]:
        """Add one result. Returns the record if this completed it, plus any given up."""
        if ts > self._progress.get(target, -1):
            self._progress[target] = ts
            if ts - self._saved.get(target, -_PROGRESS_STEP_MS) >= _PROGRESS_STEP_MS:
                self._saved = dict(self._progress)
                self.store[progress_key(self.partition)] = {
                    "p": self.partition,
                    "progress": self._saved,
                }
        store = self.store
        entry = store.get(record_id)
        if entry is None:
            entry = {"ts": ts, "p": self.partition, "sides": {}}
            heapq.heappush(self._order, (ts, record_id))
            self._pending += 1
        elif entry.get("done") or target in entry["sides"]:
            self.redeliveries[target] += 1
            return []
        sides = entry["sides"]
        sides[target] = payload
        out = []
        if all(t in sides for t in self.targets):
            store[record_id] = {"ts": entry["ts"], "p": self.partition, "done": True}
            self._pending -= 1
            self._done += 1
            heapq.heappush(self._done_order, (entry["ts"], record_id))
            out.append(Group(record_id, entry["ts"], sides))
        else:
            store[record_id] = entry  # written back: a table sends it to its changelog
        while self._pending > self.max_pending:
            out.extend(self._give_up_oldest())
        self._stay_bounded()
        return out

    def expire(self) -> list[Group[P]]:
        """Records the slowest target has passed by the grace period: given up as unpaired."""
        if any(t not in self._progress for t in self.targets):
            return []  # a target that has sent nothing yet has not moved past anything
        cutoff = min(self._progress[t] for t in self.targets) - self.grace_ms
        out = []
        while self._order and self._order[0][0] < cutoff:
            out.extend(self._give_up_oldest())
        while self._done_order and self._done_order[0][0] < cutoff:
            self._forget_oldest_done()
        return out

    def flush(self) -> list[Group[P]]:
        """Every waiting record, given up as unpaired (the end of a run)."""
        out = []
        while self._order:
            out.extend(self._give_up_oldest())
        return out

    @property
    def pending(self) -> int:
        return self._pending

    def _stay_bounded(self) -> None:
        # Completed records leave stale heap entries until expire() passes them; when
        # expire() is not called often enough, drop them (and the oldest completed ids).
        if len(self._order) > 2 * self.max_pending:
            self._order = [(ts, i) for ts, i in self._order if "sides" in self.store.get(i, {})]
            heapq.heapify(self._order)
        while self._done > self.max_pending:
            self._forget_oldest_done()

    def _forget_oldest_done(self) -> None:
        _, record_id = heapq.heappop(self._done_order)
        entry = self.store.get(record_id)
        if entry is not None and entry.get("done"):
            del self.store[record_id]
            self._done -= 1

    def _give_up_oldest(self) -> list[Group[P]]:
        ts, record_id = heapq.heappop(self._order)
        entry = self.store.get(record_id)
        if entry is None or entry.get("done"):  # completed since it was queued
            return []
        del self.store[record_id]
        self._pending -= 1
        self.unpaired += 1
        return [Group(record_id, ts, entry["sides"])]
