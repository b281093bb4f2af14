"""Per-key ordering: records with the same key are handled one after another, in the order
they were read; records with different keys in parallel.

    lanes = Lanes(handle)      # await handle(item) for each record, one task per busy key
    lanes.dispatch(item)       # in read order
    lanes.buffered             # records dispatched and not handled yet (the window's measure)

A lane is a deque and a task while its key has work; it disappears when it runs dry, so an
idle key costs nothing. Records without a key each get a lane of their own. The key is
scoped by partition number only, so the retry topic's records share their key's lane with
the mirror's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.envelope import Envelope
from shadowtap.errors import EnvelopeError

TP = tuple[str, int]


class Item:
    """One record between read and finished."""

    __slots__ = ("acks", "env", "error", "gen", "key", "offset", "tp", "value")

    def __init__(self, tp: TP, offset: int, gen: int, key: bytes | None, value: bytes) -> None:
        self.tp = tp
        self.offset = offset
        self.gen = gen  # the partition's assignment when it was read (shadowtap.replayers.engine)
        self.key = key
        self.value = value
        self.env: Envelope | None = None
        self.error: EnvelopeError | None = None
        self.acks = 0  # its messages on their way to Kafka (shadowtap.replayers.outbox)


class Lanes:
    """A task per key with work, handling its records in order."""

    def __init__(self, handle: Callable[[Item], Awaitable[None]]) -> None:
        self._handle = handle
        self._lanes: dict[tuple[int, Any], deque[Item]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.buffered = 0

    @property
    def busy(self) -> bool:
        return bool(self._lanes)

    def dispatch(self, item: Item) -> None:
        """Queue a record behind its key's earlier ones (a task starts if the key had none)."""
        self.buffered += 1
        lane_key = (item.tp[1], item.key if item.key is not None else ("offset", item.offset))
        lane = self._lanes.get(lane_key)
        if lane is not None:
            lane.append(item)
        else:
            lane = self._lanes[lane_key] = deque((item,))
            task = asyncio.create_task(self._run(lane_key, lane))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(self, lane_key: tuple[int, Any], lane: deque[Item]) -> None:
        handle = self._handle
        try:
            while lane:
                await handle(lane[0])
                lane.popleft()
                self.buffered -= 1
        finally:
            if self._lanes.get(lane_key) is lane:
                del self._lanes[lane_key]

    async def cancel(self) -> None:
        """Stop every lane (at shutdown: what is unfinished is sent again later)."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
