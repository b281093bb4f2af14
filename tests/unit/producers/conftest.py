"""A Capturer whose publisher queues into memory: unit tests need no broker."""

from __future__ import annotations

from typing import Any

import pytest

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode
from shadowtap.producers.core import Capturer
from shadowtap.producers.publisher import Publisher


class MemoryProducer:
    """Just enough of confluent_kafka.Producer: produce, poll, flush, len."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.records: list[tuple[str, bytes, bytes | None, Any]] = []
        self.capacity = capacity

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Any = None,
        timestamp: int = 0,
    ) -> None:
        if len(self.records) >= self.capacity:
            raise BufferError("Local: Queue full")
        self.records.append((topic, value, key, headers))

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.records)  # nothing is ever delivered: all of them are queued


class Recorder:
    def __init__(
        self,
        capture: dict[str, Any] | None = None,
        capacity: int = 1_000_000,
        *,
        marking: dict[str, Any] | None = None,
    ) -> None:
        settings = Settings.load(
            env={},
            overrides={"capture": {"source": "unit", **(capture or {})}, "marking": marking or {}},
        )
        self.producer = MemoryProducer(capacity)
        self.capturer = Capturer(settings, publisher=Publisher(settings, producer=self.producer))

    @property
    def envelopes(self) -> list[Envelope]:
        return [decode(value) for _, value, _, _ in self.producer.records]

    @property
    def keys(self) -> list[bytes | None]:
        return [key for _, _, key, _ in self.producer.records]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_recorder() -> type[Recorder]:
    return Recorder
