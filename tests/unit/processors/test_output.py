"""A batch of output messages resolves once every delivery report is in, whatever the order
of reports and seal, and fails if the broker refused any one of them."""

from __future__ import annotations

import asyncio
import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from shadowtap.processors.output import Batch


async def test_a_batch_resolves_when_its_last_report_arrives_from_librdkafkas_thread() -> None:
    batch = Batch(asyncio.get_running_loop())
    for _ in range(3):
        batch.add()
    batch.delivered(None)
    batch.seal()
    assert not batch.done.done()  # two still pending
    reports = threading.Thread(target=lambda: [batch.delivered(None) for _ in range(2)])
    reports.start()
    await asyncio.wait_for(batch.done, 5)
    reports.join()
    assert batch.done.result() is None


async def test_a_batch_whose_reports_all_came_before_the_seal_resolves_at_the_seal() -> None:
    batch = Batch(asyncio.get_running_loop())
    batch.add()
    batch.delivered(None)
    assert not batch.done.done()  # not sealed: more messages may come
    batch.seal()
    assert batch.done.done() and batch.done.result() is None


async def test_an_empty_batch_resolves_at_once() -> None:
    batch = Batch(asyncio.get_running_loop())
    batch.seal()
    assert batch.done.result() is None


async def test_one_refused_message_fails_the_batch() -> None:
    batch = Batch(asyncio.get_running_loop())
    for _ in range(3):
        batch.add()
    batch.seal()
    batch.delivered(None)
    batch.delivered(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS))
    batch.delivered(None)
    with pytest.raises(KafkaException, match="NOT_ENOUGH_REPLICAS"):
        await asyncio.wait_for(batch.done, 5)


async def test_a_message_that_could_not_be_queued_fails_its_batch_with_its_error() -> None:
    batch = Batch(asyncio.get_running_loop())
    batch.add()
    batch.add()
    batch.failed(TypeError("headers must be bytes"))
    batch.seal()
    assert not batch.done.done()  # one still in flight
    batch.delivered(None)
    with pytest.raises(TypeError, match="headers must be bytes"):
        await asyncio.wait_for(batch.done, 5)
