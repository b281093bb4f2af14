"""Replayer-stage DLQ records redriven: to the group they failed in only, and once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from shadowtap.config import Settings
from shadowtap.envelope import encode
from shadowtap.kafka import create_topics, make_consumer, make_producer, retry_topic_spec
from tests.integration.dlqtool import dlq_json
from tests.integration.replayers.conftest import (
    Reader,
    TargetServer,
    ThreadWorker,
    envelopes,
    produce,
    with_replayer,
)


def _wait(condition: Callable[[], bool], why: str, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


@pytest.fixture
def two_targets() -> Iterator[tuple[TargetServer, TargetServer]]:
    servers = (TargetServer(), TargetServer())
    yield servers
    for server in servers:
        server.stop()


def test_a_failed_delivery_is_redriven_to_its_own_group_only_once(
    rsettings: Settings,
    two_targets: tuple[TargetServer, TargetServer],
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
    tmp_path: Path,
) -> None:
    failing, healthy = two_targets
    staging = with_replayer(
        rsettings,
        group=rsettings.replayer.group + "-staging",
        target=failing.url,
        retry_statuses=(503,),
        retries=0,
    )
    dr = with_replayer(rsettings, group=rsettings.replayer.group + "-dr", target=healthy.url)
    failing.mode = "status:503"
    records = envelopes(5)
    ids = {e.id for e in records}
    produce(staging, list(records))
    thread_worker(staging)
    thread_worker(dr)
    dead = reader(staging.topics.dlq)
    dead.until(lambda r: len(r.messages) >= 5)
    _wait(lambda: set(healthy.ids()) == ids, "the healthy group delivers everything")
    assert sorted(failing.ids()) == sorted(ids)

    # The operator fixes staging, looks first, then redrives.
    failing.mode = "ok"
    stats = dlq_json(staging, tmp_path, "stats")
    assert stats["records"] == 5
    [row] = stats["counts"]
    assert (row["stage"], row["reason"], row["group"]) == (
        "replayer",
        "status-503",
        staging.replayer.group,
    )
    retry = staging.topics.retry(staging.replayer.group)
    preview = dlq_json(staging, tmp_path, "redrive", "--reason", "status-503")
    assert not preview["executed"] and preview["sent"] == 0
    assert preview["to_send"] == [
        {"stage": "replayer", "reason": "status-503", "to": retry, "records": 5}
    ]
    time.sleep(0.5)
    assert sorted(failing.ids()) == sorted(ids), "a preview sent something"

    done = dlq_json(staging, tmp_path, "redrive", "--reason", "status-503", "--execute")
    assert done["sent"] == 5 and done["warnings"] == []
    _wait(lambda: len(failing.ids()) == 10, "staging gets the 5 redriven records")
    assert sorted(failing.ids()[5:]) == sorted(ids)
    results = reader(staging.topics.results)
    group = staging.replayer.group
    results.until(lambda r: sum(x.status == 200 and x.group == group for x in r.results()) >= 5)

    # Twice: nothing more is sent; the other group never saw a record again.
    again = dlq_json(staging, tmp_path, "redrive", "--reason", "status-503", "--execute")
    assert (again["sent"], again["already_redriven"], again["to_send"]) == (0, 5, [])
    time.sleep(1.0)
    assert len(failing.ids()) == 10
    assert sorted(healthy.ids()) == sorted(ids)

    redriven = reader(retry)
    redriven.until(lambda r: len(r.messages) >= 5)
    redriven.drain(0.5)
    assert len(redriven.messages) == 5
    origins = {dict(m.headers())["shadowtap-redriven-from"].decode() for m in redriven.messages}
    dlq_topic = staging.topics.dlq
    assert origins == {f"{dlq_topic}:{m.partition()}:{m.offset()}" for m in dead.messages}
    listed = dlq_json(staging, tmp_path, "list")["records"]
    assert {x["redriven"] for x in listed} == {"done"}
    assert {x["record_id"] for x in listed} == ids


def test_a_new_retry_group_starts_where_the_worker_group_left_the_retry_topic(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
) -> None:
    # Earlier workers read the retry topic in their own group; <group>.retry starts where
    # they left it, not at the topic's start: an upgrade sends no redriven record again.
    s = with_replayer(rsettings, target=target.url)
    topic = s.topics.retry(s.replayer.group)
    create_topics(s, specs=[retry_topic_spec(s.topics, s.replayer.group)])
    old, new = envelopes(4, "/old"), envelopes(3, "/new")
    producer = make_producer(s.kafka)
    for env in old:
        producer.produce(topic, encode(env), partition=0)
    assert producer.flush(30) == 0
    before = make_consumer(s.kafka, s.replayer.group)  # what an earlier worker committed
    before.commit(offsets=[TopicPartition(topic, 0, len(old))], asynchronous=False)
    before.close()
    for env in new:
        producer.produce(topic, encode(env), partition=0)
    assert producer.flush(30) == 0

    thread_worker(s)
    _wait(lambda: set(target.ids()) >= {e.id for e in new}, "the new records delivered")
    time.sleep(1.0)
    assert sorted(target.ids()) == sorted(e.id for e in new)
