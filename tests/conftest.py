"""Shared fixtures: a real Apache Kafka broker for tests marked ``kafka``.

The broker comes from the same resolver as the demo (shadowtap.devkafka.resolve_broker):
SHADOWTAP_BOOTSTRAP → Docker (testcontainers) → a local Apache Kafka JVM started fresh for
this session and stopped after it. The header of the test report names the broker used.

The local JVM broker also has a SASL_SSL listener (SCRAM and PLAIN users) and an SSL listener
that requires a client certificate, from a throwaway CA made for the session (``kafka_pki``);
``secured_kafka`` gives settings for them, and skips where the broker has none (an existing
cluster, Docker).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import Broker, resolve_broker
from shadowtap.devkafka_secure import SecureListeners


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests under integration/ and e2e/ talk to Kafka unless they say otherwise.
    for item in items:
        path = str(item.path)
        if "/integration/" in path or "/e2e/" in path:
            item.add_marker(pytest.mark.kafka)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


@dataclasses.dataclass(frozen=True)
class KafkaPKI:
    """The session's TLS material: the broker's CA, a client certificate it signed, an
    unrelated CA (which trusts nothing of ours) and the SCRAM/PLAIN user."""

    ca_file: Path
    untrusted_ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    stranger_cert_file: Path  # a client certificate from the unrelated CA
    stranger_key_file: Path
    listeners: SecureListeners
    user: str = "shadowtap"
    password: str = "shadowtap-secret"


@pytest.fixture(scope="session")
def kafka_pki(tmp_path_factory: pytest.TempPathFactory) -> KafkaPKI:
    from tests.tlscerts import TestCA

    home = tmp_path_factory.mktemp("kafka-pki")
    ca = TestCA.create(home / "ca", "shadowtap test CA")
    other = TestCA.create(home / "other", "unrelated CA")
    keystore = ca.issue(home / "broker", "broker", server=True).pkcs12(
        home / "broker.p12", "broker-store"
    )
    client = ca.issue(home / "client", "shadowtap-client")
    stranger = other.issue(home / "stranger", "stranger")
    listeners = SecureListeners(
        keystore=str(keystore),
        keystore_password="broker-store",
        client_ca_file=str(ca.cert_file),
        users=(("shadowtap", "shadowtap-secret"),),
    )
    return KafkaPKI(
        ca.cert_file,
        other.cert_file,
        client.cert_file,
        client.key_file,
        stranger.cert_file,
        stranger.key_file,
        listeners,
    )


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, kafka_pki: KafkaPKI) -> Iterator[Broker]:
    """A running broker for the whole session (with secured listeners when local)."""
    # One broker per pytest process, so parallel sessions never stop each other's broker.
    with resolve_broker(
        f"pytest-{os.getpid()}", ephemeral=True, secure=kafka_pki.listeners
    ) as broker:
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
                "diffs": unique_name("diffs"),
                "diff_states": unique_name("diffstates"),
                "redriven": unique_name("redriven"),
                "retry_prefix": unique_name("retry") + ".",
                "partitions": 3,
            },
        },
    )


@pytest.fixture(scope="session")
def secured_kafka(kafka_broker: Broker, kafka_pki: KafkaPKI) -> KafkaSettings:
    """Settings for the session broker's SASL_SSL listener: SCRAM-SHA-512, the test CA."""
    if kafka_broker.sasl_ssl_bootstrap is None:
        pytest.skip(f"the session broker ({kafka_broker.kind}) has no SASL_SSL listener")
    return KafkaSettings(
        bootstrap=kafka_broker.sasl_ssl_bootstrap,
        client_id="shadowtap-tests",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=kafka_pki.user,
        sasl_password=kafka_pki.password,
        ssl_ca_file=str(kafka_pki.ca_file),
        connect_timeout_s=20,
    )


@pytest.fixture
def secured_settings(settings: Settings, secured_kafka: KafkaSettings) -> Settings:
    """``settings`` (this test's topics) reaching the broker through its SASL_SSL listener."""
    return dataclasses.replace(settings, kafka=secured_kafka)


def kafka_env(kafka: KafkaSettings, **changes: Any) -> dict[str, str]:
    """The environment of a ``shadowtap`` subprocess: os.environ without SHADOWTAP_*, plus
    ``kafka`` (with ``changes``) as SHADOWTAP_KAFKA_* variables."""
    from shadowtap.configload import to_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(to_env("kafka", dataclasses.replace(kafka, **changes)))
    return env
