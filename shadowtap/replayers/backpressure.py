"""How much to read: the window of records read and not yet sent, and paced-replay parking.

The window holds ``max_buffered`` records the target has not taken yet. Full for a moment
(a burst), the engine just stops reading: librdkafka's prefetch queue is bounded. Full for
longer than ``_PAUSE_AFTER_S`` (a slow or dead target), the source's partitions are paused,
so polling goes on (group membership, rebalances) without reading records, and resumed once
the window is half empty. A slow or dead target makes lag grow while memory stays flat.

Paced replay (``speed`` not ``max``) also parks a partition's records that are not due for a
while: partitions are read in batches of up to 500 records, and without parking one
partition's future records fill the window while another's due records wait unread, and
arrivals drift by seconds. Parked records stay in order (and in the offset book, so commits
never pass them). Reading goes on, so a resumed fetch never delays a due record, until a
partition has ``_PARK_MAX`` parked records; then it is paused.

The source is anything that can pause and resume its partitions (``Valve``;
shadowtap.replayers.source wraps a confluent-kafka consumer, in a group or assigned).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Protocol

from shadowtap.replayers.lanes import TP, Item
from shadowtap.replayers.pacing import Pacer

# How long the window may stay full before the partitions are paused.
_PAUSE_AFTER_S = 1.0
# Paced replay reads a partition at most this far ahead of the records' due times.
LOOKAHEAD_S = 1.0
# Records parked per partition before it is paused (paced replay; memory bound).
_PARK_MAX = 2000
# Records read at most at once.
_READ_MAX = 500


class Valve(Protocol):
    """A source's partitions, paused and resumed (errors are the source's to swallow)."""

    def pause_all(self) -> None: ...
    def resume_all(self, keep_paused: Collection[TP]) -> None: ...
    def pause(self, tp: TP) -> None: ...
    def resume(self, tp: TP) -> None: ...


class Backpressure:
    """The window and the parked partitions of one engine."""

    def __init__(self, max_buffered: int, pacer: Pacer) -> None:
        self.max_buffered = max_buffered
        self._pacer = pacer
        self.valve: Valve | None = None  # the source, once it runs
        # Records waiting for their due time (paced replay) are bounded by the lookahead,
        # not by the window: the window is for records the target has not taken yet.
        self.waiting = 0
        self.paused = False
        self._repause = False
        self._full_since: float | None = None
        # Paced replay: partitions held until their records are due, with what was read.
        self.parked: dict[TP, deque[Item]] = {}
        self.held_until: dict[TP, float] = {}
        self._park_paused: set[TP] = set()

    def budget(self, buffered: int) -> int:
        """How many records to read now, ``buffered`` being in lanes (0: read nothing).

        While paused it still reads (nothing arrives from paused partitions): reading is
        what serves the source's callbacks.
        """
        room = self.max_buffered - (buffered - self.waiting)
        if room <= 0:
            now = time.monotonic()
            self._full_since = self._full_since or now
            if not self.paused and now - self._full_since > _PAUSE_AFTER_S:
                self.paused = True
                self._valve().pause_all()
        else:
            self._full_since = None
            if self.paused and buffered - self.waiting <= self.max_buffered // 2:
                self.paused = False
                self._valve().resume_all(self._park_paused)
        if room > 0 or self.paused:
            return max(1, min(_READ_MAX, room))
        return 0

    def source_changed(self) -> None:
        """The source got new partitions (an assignment): paused, it pauses them too."""
        if self.paused:
            self._repause = True

    def after_read(self) -> None:
        if self._repause and self.paused:
            self._repause = False
            self._valve().pause_all()

    def hold_if_ahead(self, tp: TP, ts: int) -> None:
        """Paced replay: park ``tp``'s next records if this one is not due for a while."""
        ahead = self._pacer.delay(ts)
        if ahead > LOOKAHEAD_S and tp not in self.parked:
            self.parked[tp] = deque()
            self.held_until[tp] = time.monotonic() + ahead

    def park(self, tp: TP, parked: deque[Item], item: Item) -> None:
        parked.append(item)
        if len(parked) >= _PARK_MAX and tp not in self._park_paused:
            self._park_paused.add(tp)
            self._valve().pause(tp)

    def release(self, now: float, dispatch: Callable[[Item], None]) -> None:
        """Hand ``dispatch`` the parked records of partitions that are due, in order."""
        for tp, until in list(self.held_until.items()):
            if until - now >= LOOKAHEAD_S / 2:
                continue
            parked = self.parked.pop(tp)
            del self.held_until[tp]
            while parked:
                dispatch(parked.popleft())
                if tp in self.parked:  # held again: the rest waits in order
                    self.parked[tp].extend(parked)
                    break
            left = len(self.parked.get(tp, ()))
            if tp in self._park_paused and left < _PARK_MAX // 2:
                self._park_paused.discard(tp)
                if not self.paused:
                    self._valve().resume(tp)

    def forget(self, tp: TP) -> None:
        """A partition no longer read here: its parked records go with it."""
        self.parked.pop(tp, None)
        self.held_until.pop(tp, None)
        self._park_paused.discard(tp)

    def _valve(self) -> Valve:
        assert self.valve is not None, "the engine reads from no source"
        return self.valve
