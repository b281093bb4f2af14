"""Shared fixtures: a real Apache Kafka broker for tests marked ``kafka``.

The broker comes from the same resolver as the demo (shadowtap.devkafka.resolve_broker):
SHADOWTAP_BOOTSTRAP → Docker (testcontainers) → a local Apache Kafka JVM started fresh for
this session and stopped after it. The header of the test report names the broker used.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import Broker, resolve_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests under integration/ and e2e/ talk to Kafka unless they say otherwise.
    for item in items:
        path = str(item.path)
        if "/integration/" in path or "/e2e/" in path:
            item.add_marker(pytest.mark.kafka)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A running broker for the whole session."""
    # One broker per pytest process, so parallel sessions never stop each other's broker.
    with resolve_broker(f"pytest-{os.getpid()}", ephemeral=True) as broker:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"kafka broker: {broker.describe()}")
        yield broker


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker: Broker) -> KafkaSettings:
    return KafkaSettings(bootstrap=kafka_broker.bootstrap, client_id="shadowtap-tests")


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Topic/group names unique to one test, so tests never see each other's records."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def settings(kafka_settings: KafkaSettings, unique_name: Callable[[str], str]) -> Settings:
    """Settings pointing at the test broker with topic names unique to this test."""
    return settings_for(kafka_settings.bootstrap, unique_name)


def settings_for(bootstrap: str, unique_name: Callable[[str], str]) -> Settings:
    """Settings pointing at ``bootstrap`` with topic names of their own."""
    return Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": bootstrap, "client_id": "shadowtap-tests"},
            "topics": {
                "captured": unique_name("captured"),
                "mirror": unique_name("mirror"),
                "results": unique_name("results"),
                "dlq": unique_name("dlq"),
                "partitions": 3,
            },
        },
    )
