"""A batch's records handed to the scrubber processes in chunks, their outcomes back in order.

With ``processor.scrub_processes`` the worker runs decode → filter → sample → dedup itself and
hands what passed to shadowtap.processors.parallel in chunks of ``_CHUNK`` records; each
chunk's outcomes come back in the chunks' order, so the batch sends them as the worker
would have::

    handoff = Handoff(pool)
    handoff.add(record, (value, env.meta, timings))   # a chunk goes out when it is full
    chunks = handoff.cut()                            # the batch's chunks, the last one sent
    await settle(chunks, send)                        # send(record, outcome), in order
    abandon(chunks)                                   # a batch that starts over
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shadowtap.processors.offsets import Record
from shadowtap.processors.parallel import Item, ScrubPool
from shadowtap.processors.pipeline import Outcome

_CHUNK = 50  # records per hand-over to a scrubber process: ~1 % of the work in pickling

Chunks = list[tuple[list[Record], "asyncio.Future[list[Outcome]]"]]


class Handoff:
    """The current batch's records on their way to the scrubber processes."""

    def __init__(self, pool: ScrubPool) -> None:
        self.pool = pool
        self._chunk: list[tuple[Record, Item]] = []  # records waiting to fill a chunk
        self._chunks: Chunks = []  # this batch's chunks, sent

    def add(self, record: Record, item: Item) -> None:
        self._chunk.append((record, item))
        if len(self._chunk) >= _CHUNK:
            self._submit()

    def cut(self) -> Chunks:
        """The batch's chunks (a partial one sent now); later records start the next."""
        if self._chunk:
            self._submit()
        chunks, self._chunks = self._chunks, []
        return chunks

    def _submit(self) -> None:
        work = self.pool.scrub([item for _, item in self._chunk])
        self._chunks.append(([r for r, _ in self._chunk], asyncio.ensure_future(work)))
        self._chunk = []


async def settle(chunks: Chunks, send: Callable[[Record, Outcome], None]) -> None:
    """Hand each record of ``chunks`` and what the scrubbers made of it to ``send``, in order."""
    for records, work in chunks:
        for record, outcome in zip(records, await work, strict=True):
            send(record, outcome)


def abandon(chunks: Chunks) -> None:
    """Chunks of a batch that starts over: cancelled if still running, their errors seen."""
    for _, work in chunks:
        if not work.done():
            work.cancel()
        elif not work.cancelled():
            work.exception()
