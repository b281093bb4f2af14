"""Each Faust behaviour shadowtap.faust_internals relies on, against the installed
faust-streaming, aiokafka and mode classes (no broker): a release that changes one fails here.

To try a new release: install it, set SHADOWTAP_ALLOW_UNTESTED_FAUST=1 and run this file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata
from aiokafka.structs import TopicPartition as AioTP
from faust.types import TP, Message

from shadowtap import faust_internals
from shadowtap.errors import DependencyError

CAPTURED = "captured"
TP0 = TP(CAPTURED, 0)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Any]:
    """A Faust app as build_app makes one, never started: no broker is contacted."""
    app = faust.App("fence", datadir=str(tmp_path), broker="kafka://127.0.0.1:1", store="memory://")
    source = app.topic(CAPTURED, value_serializer="raw")

    @app.agent(source)
    async def process(stream: Any) -> None:
        async for _ in stream.noack():
            pass

    # What subscribing does: the source topic's acks are kept.
    app.topics.add(source)
    await app.topics._update_indices()
    thread_loop = app.consumer._thread.thread_loop  # the consumer thread's, made with it
    yield app
    thread_loop.close()


def _ack(consumer: Any, *offsets: int) -> None:
    for offset in offsets:
        message = Message(CAPTURED, 0, offset, 0.0, 0, [], None, b"v", None, tp=TP0)
        assert consumer.ack(message)


class _Thread:
    """Stands in for the consumer thread (which only a started app has): what is committed."""

    def __init__(self) -> None:
        self.committed: list[dict[TP, int]] = []

    def assignment(self) -> set[TP]:
        return {TP0}

    async def commit(self, offsets: dict[TP, int]) -> bool:
        self.committed.append(dict(offsets))
        return True


async def test_fausts_own_reckoning_still_steps_over_a_one_record_hole(app: Any) -> None:
    # Why commit_watermarks exists: 100 never reached the agent, yet Faust would commit 102.
    consumer = app.consumer
    consumer._committed_offset[TP0] = 100
    _ack(consumer, 101)
    assert consumer._new_offset(TP0) == 102


async def test_fausts_commit_asks_new_offset_for_each_acked_partition(app: Any) -> None:
    consumer = app.consumer
    consumer._committed_offset[TP0] = 100
    positions = {(CAPTURED, 0): 101}
    faust_internals.commit_watermarks(consumer, lambda t, p: positions.get((t, p)))
    consumer._thread = thread = _Thread()

    _ack(consumer, 101, 102)
    assert consumer._acked[TP0] == [101, 102]  # the books commit_watermarks empties
    assert await consumer.force_commit()
    assert thread.committed == [{TP0: 101}]  # the watermark, not Faust's 103
    assert consumer._acked[TP0] == [] and consumer._acked_index[TP0] == set()

    positions.clear()  # no position: nothing committed for it
    _ack(consumer, 103)
    assert not await consumer.force_commit()
    assert len(thread.committed) == 1


async def test_revoked_partitions_are_out_of_fausts_books_before_the_signal(app: Any) -> None:
    # Why commit_now exists: consumer.commit() finds nothing to commit for them by then.
    consumer = app.consumer
    _ack(consumer, 5)
    seen: list[bool] = []

    async def revoked(tps: set[TP]) -> None:
        seen.append(TP0 in consumer._acked)

    consumer._on_partitions_revoked = revoked
    await consumer.on_partitions_revoked({TP0})
    assert seen == [False]


async def test_the_revoked_signal_hands_receivers_the_partitions(app: Any) -> None:
    got: list[Any] = []

    @app.on_partitions_revoked.connect
    async def receiver(sender: Any, revoked: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        got.append((sender, revoked))

    await app.on_partitions_revoked.send({TP0})
    assert got == [(app, {TP0})]


class _AioConsumer:
    """aiokafka's consumer as the consumer thread holds it: what it is asked to commit."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.committed: list[dict[AioTP, OffsetAndMetadata]] = []

    def assignment(self) -> set[AioTP]:
        return {AioTP(CAPTURED, 0)}

    async def commit(self, offsets: dict[AioTP, OffsetAndMetadata]) -> None:
        if self.error is not None:
            raise self.error
        self.committed.append(offsets)


async def test_commit_now_commits_assigned_partitions_through_aiokafka(app: Any) -> None:
    consumer = app.consumer
    thread = consumer._thread
    thread._consumer = aio = _AioConsumer()
    consumer._thread.commit = thread._commit  # the thread's own method, called in this loop

    assert await faust_internals.commit_now(consumer, {TP0: 42, TP(CAPTURED, 1): 7})
    assert aio.committed == [{AioTP(CAPTURED, 0): OffsetAndMetadata(42, "")}]
    assert not await faust_internals.commit_now(consumer, {})


async def test_a_commit_the_group_refuses_is_false_not_a_crash(app: Any) -> None:
    consumer = app.consumer
    thread = consumer._thread
    thread._consumer = _AioConsumer(
        CommitFailedError(
            "Commit cannot be completed since the group has already rebalanced and may have "
            "assigned the partitions to another member"
        )
    )
    consumer._thread.commit = thread._commit
    crashed: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    thread.crash = crash
    assert not await faust_internals.commit_now(consumer, {TP0: 42})
    assert crashed == []


async def test_table_writes_are_queued_in_the_producer_buffer_ready_to_send(app: Any) -> None:
    table = app.Table("dedup", default=lambda: None, partitions=3)
    changelog = table.changelog_topic.get_topic_name()
    other = app.topic("elsewhere", value_serializer="raw")
    queued: list[Any] = []
    app.producer.buffer.put = queued.append
    sent: list[tuple[Any, ...]] = []
    faust_internals.divert_table_writes(
        app.producer, changelog, lambda *m, partition: sent.append((*m, partition))
    )

    table.send_changelog(2, "fp", ["id", 1])  # what a table assignment queues
    other.send_soon(key=b"k", value=b"v")
    assert sent == [(changelog, b'"fp"', b'["id",1]', None, 2)]  # serialized, partitioned
    assert [fut.message.channel.get_topic_name() for fut in queued] == ["elsewhere"]


async def test_a_commit_flushes_the_producer_and_what_flush_also_adds(app: Any) -> None:
    flushed: list[str] = []

    async def faust_flush() -> None:
        flushed.append("faust")

    async def diverted() -> None:
        flushed.append("diverted")

    app.producer.flush = faust_flush
    faust_internals.flush_also(app.producer, diverted)
    committed: list[Any] = []

    async def commit(offsets: Any) -> bool:
        committed.append((list(flushed), offsets))
        return True

    consumer = app.consumer
    consumer._commit = commit
    consumer.assignment = lambda: {TP0}
    assert await consumer._commit_offsets({TP0: 7})
    assert committed == [(["faust", "diverted"], {TP0: 7})]  # flushed, then committed


async def test_the_workers_spinner_is_what_turns_the_root_logger_to_debug(app: Any) -> None:
    def level_after_setup(quiet: bool) -> int:
        worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
        if quiet:
            faust_internals.quiet_worker(worker)
        logger = logging.Logger("probe", logging.WARNING)
        logger.addHandler(logging.NullHandler())
        worker.on_setup_root_logger(logger, logging.WARNING)
        return logger.level

    assert level_after_setup(quiet=False) == logging.DEBUG
    assert level_after_setup(quiet=True) == logging.WARNING


def test_the_installed_versions_are_the_tested_ones() -> None:
    assert faust_internals.untested_versions() == {}


def test_an_untested_version_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faust_internals.TESTED, "faust-streaming", "0.99.0")
    monkeypatch.delenv(faust_internals.ALLOW_UNTESTED, raising=False)
    with pytest.raises(DependencyError) as caught:
        faust_internals.require_tested_versions()
    message = str(caught.value)
    assert "faust-streaming 0.15.3 (tested: 0.99.0)" in message
    assert "pip install 'faust-streaming==0.99.0'" in message
    assert "SHADOWTAP_ALLOW_UNTESTED_FAUST=1" in message

    monkeypatch.setenv(faust_internals.ALLOW_UNTESTED, "1")
    faust_internals.require_tested_versions()  # a maintainer trying the new release
