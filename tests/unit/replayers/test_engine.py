"""The replay engine without a consumer group: records from a list, positions to a checkpoint
callable, as a drill reading a time window would run it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection

import httpx

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode
from shadowtap.replayers.engine import Engine
from shadowtap.replayers.lanes import TP
from shadowtap.replayers.source import Accept
from tests.unit.replayers.test_rebalance import Producer

TOPIC = "window"


class ListSource:
    """Records of two partitions, read in order; pausing stops a partition's reads."""

    def __init__(self, records: list[tuple[int, int, bytes, bytes]]) -> None:
        self.queue = deque(records)
        self.paused: set[TP] = set()

    def read(self, limit: int, accept: Accept) -> int:
        n = 0
        while self.queue and n < limit and (TOPIC, self.queue[0][0]) not in self.paused:
            partition, offset, key, value = self.queue.popleft()
            accept(TOPIC, partition, offset, key, value)
            n += 1
        return n

    def pause_all(self) -> None:
        self.paused |= {(TOPIC, 0), (TOPIC, 1)}

    def resume_all(self, keep_paused: Collection[TP]) -> None:
        self.paused = set(keep_paused)

    def pause(self, tp: TP) -> None:
        self.paused.add(tp)

    def resume(self, tp: TP) -> None:
        self.paused.discard(tp)


async def test_a_window_of_records_is_delivered_in_key_order_and_checkpointed() -> None:
    seen: list[str] = []

    async def target(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        await asyncio.sleep(0.001 * (hash(request.url.path) % 3))  # answers out of order
        return httpx.Response(200)

    records = []
    for partition in (0, 1):
        for offset in range(40):
            env = Envelope(method="POST", path=f"/p{partition}/k{offset % 4}/{offset}")
            records.append((partition, offset, b"k%d" % (offset % 4), encode(env)))
    records.append((1, 40, b"k9", b"not an envelope"))  # to the DLQ, and finished all the same
    settings = Settings.load(
        env={},
        overrides={"replayer": {"target": "http://staging.test", "max_in_flight": 8}},
    )
    checkpoints: list[list[tuple[str, int, int]]] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(transport=httpx.MockTransport(target)) as client:
        engine = Engine(settings, client)
        engine.outbox.producer = producer = Producer()
        engine.assign([(TOPIC, 0), (TOPIC, 1)])
        await engine.open()

        def checkpoint() -> None:
            positions = engine.tracker.to_commit()
            engine.tracker.sent(positions)
            checkpoints.append(positions)
            if engine.tracker.position((TOPIC, 0)) == 40 == engine.tracker.position((TOPIC, 1)) - 1:
                stop.set()

        source = ListSource(records)
        await asyncio.wait_for(engine.pump(source, stop, checkpoint, every_s=0.01), 10)
        await engine.drain(source, timeout=1)
        await engine.stop()
        await engine.close()

    assert len(seen) == 80 and engine.delivered == 81
    assert producer.topics == {settings.topics.results: 80, settings.topics.dlq: 1}
    for partition in (0, 1):  # each key's records reached the target in offset order
        for key in range(4):
            paths = [p for p in seen if p.startswith(f"/p{partition}/k{key}/")]
            assert paths == sorted(paths, key=lambda p: int(p.rsplit("/", 1)[1]))
    positions: dict[int, list[int]] = {0: [], 1: []}
    for topic, partition, offset in (c for cs in checkpoints for c in cs):
        assert topic == TOPIC
        positions[partition].append(offset)
    assert positions[0] == sorted(positions[0]) and positions[0][-1] == 40
    assert positions[1] == sorted(positions[1]) and positions[1][-1] == 41
