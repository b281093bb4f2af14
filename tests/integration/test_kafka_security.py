"""[kafka] security against the session broker's SASL_SSL and mTLS listeners.

Every client kind connects with each SASL mechanism and with a client certificate; a wrong
password, an untrusted CA and a missing or foreign client certificate fail in seconds with
a sentence that says which: in the start-up check of every command (librdkafka and the
processor's aiokafka), and in capture, which must still never block the app.

Each failing case allows ``connect_timeout_s = 120`` while the test's own timeout is 60 s:
passing means the failure was recognised, not waited out.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import Broker
from shadowtap.errors import KafkaSecurityError
from shadowtap.kafka_check import wait_for_broker
from shadowtap.producers.publisher import Publisher
from tests.conftest import KafkaPKI, kafka_env

AUTH = "authentication failed for user 'shadowtap' (SCRAM-SHA-512)"
BOTH = ("librdkafka", "aiokafka")


def untrusted(pki: KafkaPKI) -> str:
    return f"TLS: broker certificate not trusted by CA file {pki.untrusted_ca_file}"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_each_mechanism_connects_both_client_kinds_through_sasl_ssl(
    secured_kafka: KafkaSettings, mechanism: Any
) -> None:
    kafka = dataclasses.replace(secured_kafka, sasl_mechanism=mechanism)
    assert wait_for_broker(kafka, clients=BOTH) == 1


def test_the_mtls_listener_takes_only_a_certificate_signed_by_its_ca(
    kafka_broker: Broker, kafka_pki: KafkaPKI
) -> None:
    if kafka_broker.mtls_bootstrap is None:
        pytest.skip(f"the session broker ({kafka_broker.kind}) has no mTLS listener")
    kafka = KafkaSettings(
        bootstrap=kafka_broker.mtls_bootstrap,
        security_protocol="SSL",
        ssl_ca_file=str(kafka_pki.ca_file),
        ssl_cert_file=str(kafka_pki.client_cert_file),
        ssl_key_file=str(kafka_pki.client_key_file),
        connect_timeout_s=120,
    )
    assert wait_for_broker(kafka, clients=BOTH) == 1
    without = dataclasses.replace(kafka, ssl_cert_file="", ssl_key_file="")
    foreign = dataclasses.replace(
        kafka,
        ssl_cert_file=str(kafka_pki.stranger_cert_file),
        ssl_key_file=str(kafka_pki.stranger_key_file),
    )
    for client in BOTH:
        with pytest.raises(KafkaSecurityError, match="requires a client certificate"):
            wait_for_broker(without, clients=(client,))
        with pytest.raises(KafkaSecurityError) as info:
            wait_for_broker(foreign, clients=(client,))
        assert str(info.value).startswith(
            f"TLS: broker at {kafka.bootstrap} refused the client certificate "
            f"{kafka_pki.stranger_cert_file} (kafka.ssl_cert_file)"
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", BOTH)
def test_a_wrong_password_or_an_untrusted_ca_fails_in_seconds_saying_which(
    secured_kafka: KafkaSettings, kafka_pki: KafkaPKI, client: str
) -> None:
    patient = dataclasses.replace(secured_kafka, connect_timeout_s=120)
    with pytest.raises(KafkaSecurityError) as info:
        wait_for_broker(dataclasses.replace(patient, sasl_password="wrong"), clients=(client,))
    assert str(info.value).startswith(f"{AUTH} at {secured_kafka.bootstrap}")
    with pytest.raises(KafkaSecurityError) as info:
        wait_for_broker(
            dataclasses.replace(patient, ssl_ca_file=str(kafka_pki.untrusted_ca_file)),
            clients=(client,),
        )
    assert str(info.value).startswith(untrusted(kafka_pki))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("command", "failure"),
    [
        (["topics", "describe"], "password"),
        (["topics", "create"], "ca"),
        (["process"], "password"),
        (["process"], "ca"),
        (["replay", "--target", "http://127.0.0.1:9"], "password"),
        (["collect", "--port", "0"], "password"),
        (["demo", "--requests", "1"], "password"),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_every_command_stops_at_start_up_saying_why(
    secured_kafka: KafkaSettings,
    kafka_pki: KafkaPKI,
    tmp_path: Path,
    command: list[str],
    failure: str,
) -> None:
    wrong: dict[str, Any] = (
        {"sasl_password": "wrong"}
        if failure == "password"
        else {"ssl_ca_file": str(kafka_pki.untrusted_ca_file)}
    )
    env = kafka_env(secured_kafka, connect_timeout_s=120, **wrong)
    # the demo takes an existing cluster from SHADOWTAP_BOOTSTRAP, the others from settings
    env["SHADOWTAP_BOOTSTRAP"] = secured_kafka.bootstrap
    env["SHADOWTAP_CACHE_DIR"] = str(tmp_path)  # where the demo keeps its run's logs
    proc = subprocess.run(
        [sys.executable, "-m", "shadowtap.cli", *command],
        capture_output=True, text=True, env=env, timeout=55, check=False,
    )  # fmt: skip
    said = " ".join(proc.stderr.split())  # rich wraps long lines
    expected = AUTH if failure == "password" else untrusted(kafka_pki)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: {expected}" in said, proc.stderr[-2000:]


@pytest.mark.timeout(60)
def test_capture_with_a_wrong_password_never_blocks_logs_why_and_counts_drops(
    secured_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(
        secured_settings,
        kafka=dataclasses.replace(secured_settings.kafka, sasl_password="wrong"),
        capture=dataclasses.replace(secured_settings.capture, delivery_timeout_s=2.0),
    )
    publisher = Publisher(settings)
    with caplog.at_level(logging.WARNING, logger="shadowtap.capture"):
        queued = [publisher.publish(b'{"n": %d}' % i, None, None) for i in range(20)]
        remaining = publisher.flush(30)  # serves the error and the failed deliveries
    assert queued == [True] * 20  # queued at once: the app never waits on Kafka
    assert remaining == 0
    assert publisher.metrics.dropped == {"delivery-failed": 20}
    assert f"shadowtap: Kafka client error: {AUTH} at {settings.kafka.bootstrap}" in caplog.text
