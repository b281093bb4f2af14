"""Scrubbing in other processes gives the same bytes as in the worker's own, and a scrubber
process that dies costs a batch read again, never a record."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.errors import ConfigError
from shadowtap.processors.agent import Agent
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Record
from shadowtap.processors.parallel import ScrubPool
from shadowtap.processors.pipeline import Pipeline
from tests.pii_corpus import typical_body
from tests.unit.processors.test_agent import TP, FakeHoles, FakeOutput, FakeStream


def _records(n: int) -> list[Record]:
    out = []
    for i in range(n):
        if i % 10 == 3:
            value = encode(Envelope(method="GET", path="/healthz"))  # dropped before the pool
        elif i % 10 == 7:
            value = b"not an envelope"  # to the DLQ before the pool
        else:
            body, _ = typical_body(i)
            env = Envelope(method="POST", path=f"/orders/{i}", body=body)
            env.headers = [("content-type", "application/json")]
            value = encode(env)
        out.append(Record("captured", 0, i, b"k%d" % i, value))
    return out


def _agent(
    settings: Settings, scrubbers: ScrubPool | None, log: dict[int, Record] | None = None
) -> tuple[Agent, FakeOutput, FakeStream]:
    output = FakeOutput()
    pipeline = Pipeline(settings)
    pipeline.seen = None
    holes = FakeHoles(log or {})
    agent = Agent(
        settings,
        pipeline=pipeline,
        metrics=Metrics(),
        output=output,
        scrubbers=scrubbers,
        reader=holes,  # type: ignore[arg-type]
    )
    stream = FakeStream()
    agent.batches.ack = stream.ack
    return agent, output, stream


async def _run(agent: Agent, records: list[Record]) -> None:
    for r in records:
        await agent.take(r, SimpleNamespace(message=SimpleNamespace(offset=r.offset)))
    await agent.batches.flush()


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.load(
        env={"SHADOWTAP_PROCESSOR_SCRUB_PROCESSES": "1", "SHADOWTAP_PROCESSOR_SCRUB_KEY": "k"}
    )


async def test_scrubber_processes_send_what_the_worker_would_have(settings: Settings) -> None:
    records = _records(180)  # several chunks and a partial one
    alone, alone_out, _ = _agent(settings, None)
    await _run(alone, records)

    pool = ScrubPool(settings)
    try:
        await pool.ready()
        agent, out, stream = _agent(settings, pool)
        await _run(agent, records)
    finally:
        pool.close()

    assert out.sent == alone_out.sent  # the same bytes, in the same order, per topic
    assert len(out.sent[settings.topics.mirror]) == 144
    assert len(out.sent[settings.topics.dlq]) == 18
    assert stream.acked == list(range(180)) and agent.watermarks.position(TP) == 180
    assert agent.metrics.entities.labels("EMAIL_ADDRESS")._value.get() == 144


async def test_a_scrubber_process_that_dies_costs_its_batch_a_second_read(
    settings: Settings,
) -> None:
    records = _records(60)
    pool = ScrubPool(settings)
    try:
        await pool.ready()
        agent, out, stream = _agent(settings, pool, {r.offset: r for r in records})
        for pid in list(pool._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        await _run(agent, records[:30])

        assert stream.acked == [] and not agent.watermarks.knows(TP)
        assert agent.metrics.send_failures._value.get() == 1
        # A new pool serves the next batch, which reads the lost one back first.
        await _run(agent, records[30:])
    finally:
        pool.close()

    assert stream.acked == list(range(30, 60)) and agent.watermarks.position(TP) == 60
    # the lost batch's output never came back from the dead process: each record is out once
    paths = sorted(decode(v).path for v in out.sent[settings.topics.mirror])
    assert paths == sorted(f"/orders/{r.offset}" for r in records if r.offset % 10 not in (3, 7))


def test_a_negative_process_count_fails_at_start_naming_the_setting() -> None:
    bad = Settings.load(env={"SHADOWTAP_PROCESSOR_SCRUB_PROCESSES": "-1"})
    with pytest.raises(ConfigError, match=r"processor\.scrub_processes"):
        ScrubPool(bad)
