"""A drill's traffic: records with known capture times on the mirror topic, stamped the way
the processor stamps them (Kafka timestamp = capture time), and the replayers' real HTTP
target (tests.integration.replayers.conftest)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, Response, encode, kafka_headers
from shadowtap.kafka import create_topics, make_producer
from tests.integration.replayers.conftest import target  # noqa: F401  (fixture)


@pytest.fixture
def dsettings(settings: Settings, unique_name: Callable[[str], str]) -> Settings:
    """Topics of this test's own, created; quick commits and drains."""
    settings = dataclasses.replace(
        settings, topics=dataclasses.replace(settings.topics, drills=unique_name("drills"))
    )
    create_topics(settings)
    return dataclasses.replace(
        settings,
        replayer=dataclasses.replace(
            settings.replayer, commit_interval_s=0.1, session_timeout_s=6.0, drain_timeout_s=5.0
        ),
    )


def traffic(t0: int, n: int, step_ms: int, jitter_ms: int = 0, seed: int = 7) -> list[Envelope]:
    """``n`` records captured ``step_ms`` apart from ``t0`` (GET and POST, with production's
    recorded answer), in a write order whose capture times go back by up to ``jitter_ms``."""
    envs = [
        Envelope(
            method="GET" if i % 3 else "POST",
            path=f"/api/items/{i}",
            host="shop.example",
            ts=t0 + i * step_ms,
            body=b"" if i % 3 else b'{"n":%d}' % i,
            response=Response(status=200, duration_ms=5.0 + i % 7),
        )
        for i in range(n)
    ]
    if jitter_ms:
        rng = random.Random(seed)
        envs.sort(key=lambda e: e.ts + rng.uniform(0, jitter_ms))
    return envs


def write(settings: Settings, envs: list[Envelope], partitions: int | None = None) -> None:
    """To the mirror topic, keyed by id (spread over partitions), stamped with capture time."""
    producer = make_producer(settings.kafka)
    for i, env in enumerate(envs):
        producer.produce(
            settings.topics.mirror,
            encode(env),
            key=env.id.encode(),
            headers=kafka_headers(env),
            timestamp=env.ts,
            **({"partition": i % partitions} if partitions else {}),
        )
        producer.poll(0)
    assert producer.flush(30) == 0
