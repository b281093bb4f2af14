"""The processor agent's body, with no Faust in sight: records in, finished tokens out.

The Faust shell (shadowtap.processors.app) hands over every record it is delivered, with a
token (its Faust event) to acknowledge once the record is finished::

    agent = Agent(settings, pipeline=pipeline, metrics=metrics, output=output)
    agent.batches.ack = stream.ack            # how finished tokens are acknowledged
    await agent.take(record, event)           # for each record, in order per partition
    positions = await agent.hand_back(partitions, wait_s)   # before a rebalance

Before each record, the records its partition skipped are read back
(shadowtap.processors.holes); a record finished already (delivered again after a rebalance)
is acknowledged at once; the others go into the batch (shadowtap.processors.batches). The
commit position of each partition is ``agent.watermarks.position(tp)``
(shadowtap.processors.offsets): never past a record that is not finished.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shadowtap.config import Settings
from shadowtap.processors.batches import Batches
from shadowtap.processors.handoff import Handoff
from shadowtap.processors.holes import HoleReader, Holes
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Partition, Record, Watermarks
from shadowtap.processors.parallel import ScrubPool
from shadowtap.processors.pipeline import Pipeline

log = logging.getLogger(__name__)


class Agent:
    """Watermarks, holes and batches for one worker's records."""

    def __init__(
        self,
        settings: Settings,
        *,
        pipeline: Pipeline,
        metrics: Metrics,
        output: Any = None,
        scrubbers: ScrubPool | None = None,
        reader: HoleReader | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        self.watermarks = Watermarks()
        self.scrubbers = scrubbers  # None: the whole pipeline runs here
        handoff = Handoff(scrubbers) if scrubbers is not None else None
        self.batches = Batches(
            settings, pipeline, metrics, self.watermarks, output=output, handoff=handoff
        )
        self.holes = Holes(settings, self.watermarks, self.batches, metrics, reader)
        self._scrubbers_ready = False

    async def ready(self) -> None:
        """Wait until the scrubber processes take work (once per process)."""
        if self.scrubbers is not None and not self._scrubbers_ready:
            await self.scrubbers.ready()
            self._scrubbers_ready = True

    async def take(self, record: Record, token: Any) -> None:
        """One record as delivered: its partition's skipped records first, then itself."""
        await self.holes.before(record)
        batches = self.batches
        if self.watermarks.finished((record.topic, record.partition), record.offset):
            assert batches.ack is not None
            await batches.ack(token)  # finished before a rebalance: not again
            return
        batches.add(record, token)
        if batches.full:
            await batches.close()

    async def hand_back(self, partitions: list[Partition], wait_s: float) -> dict[Partition, int]:
        """Before a rebalance: finish the batches in flight (waiting at most ``wait_s``: a
        broker that is gone acknowledges nothing) and return the positions of
        ``partitions`` to commit. The books then start over: every partition is read again
        from the group's committed offset."""
        try:
            if self.batches.ack is not None:  # the agent has run
                await asyncio.wait_for(self.batches.flush(), wait_s)
        except TimeoutError:
            log.warning("a rebalance gave up waiting for records in flight after %.0fs", wait_s)
        positions = {}
        for tp in partitions:
            position = self.watermarks.position(tp)
            if position is not None:
                positions[tp] = position
        self.watermarks.reset()
        return positions

    def resume_at(self, positions: dict[Partition, int]) -> None:
        """Positions finished here that the group refused to commit: a partition assigned
        back starts from its own rather than the group's older offset."""
        self.holes.resume_at.update(positions)
