"""One [kafka] security config, checked at start-up and translated for every kind of client.

No broker here: what each client is given, what is refused (naming the key and the fix), and
how a security failure is put into words. tests/integration/test_kafka_security.py tries the
same settings on the real broker's SASL_SSL and mTLS listeners.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError as RdKafkaError

from shadowtap.config import KafkaSettings, Settings
from shadowtap.configload import to_env
from shadowtap.errors import ConfigError
from shadowtap.kafka import client_config
from shadowtap.kafka_check import explain
from shadowtap.kafka_security import Security
from tests.tlscerts import Issued, TestCA

SCRAM = {
    "bootstrap": "b-1.msk.example:9096",
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "shadowtap",
    "sasl_password_env": "KAFKA_PASSWORD",
}
ENV = {"KAFKA_PASSWORD": "s3cret"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, Issued]:
    home = tmp_path_factory.mktemp("pki")
    ca = TestCA.create(home, "unit CA")
    return ca, ca.issue(home, "client")


def kafka(**keys: Any) -> KafkaSettings:
    """KafkaSettings as Settings.load builds them from TOML (every key checked)."""
    return Settings.load(env={}, overrides={"kafka": keys}).kafka


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    security = Security.of(KafkaSettings(), environ={})
    assert security.librdkafka() == {"security.protocol": "PLAINTEXT"}
    assert security.aiokafka() == {"security_protocol": "PLAINTEXT"}
    assert security.faust() == {}


def test_sasl_ssl_scram_with_a_private_ca_and_mtls_is_translated_for_each_client(
    pki: tuple[TestCA, Issued],
) -> None:
    ca, client = pki
    settings = kafka(
        **SCRAM,
        ssl_ca_file=str(ca.cert_file),
        ssl_cert_file=str(client.cert_file),
        ssl_key_file=str(client.key_file),
    )
    security = Security.of(settings, environ=ENV)
    assert security.librdkafka() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "shadowtap",
        "sasl.password": "s3cret",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(ca.cert_file),
        "ssl.certificate.location": str(client.cert_file),
        "ssl.key.location": str(client.key_file),
    }
    aio = security.aiokafka()
    context = aio.pop("ssl_context")
    assert aio == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "shadowtap",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "unit CA"),),)]


@pytest.mark.parametrize(
    "keys",
    [
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
         "sasl_username": "u"},
        {"security_protocol": "SSL", "ssl_check_hostname": False},
    ],
    ids=["sasl_ssl-plain", "sasl_plaintext-scram256", "ssl"],
)  # fmt: skip
def test_faust_hands_aiokafka_exactly_what_the_start_up_check_tried(keys: dict[str, Any]) -> None:
    # The processor's start-up check connects with Security.aiokafka(); Faust builds its
    # clients from broker_credentials: both must come to the same arguments.
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    if "sasl_username" in keys:
        keys["sasl_password"] = "pw"
    security = Security.of(kafka(**keys), environ={})
    from_faust = dict(credentials_to_aiokafka_auth(security.faust()["broker_credentials"]))
    assert from_faust.pop("ssl_context", None) is security.ssl_context
    expected = security.aiokafka()
    expected.pop("ssl_context", None)
    assert from_faust == expected
    if keys.get("ssl_check_hostname") is False:
        assert security.ssl_context is not None and not security.ssl_context.check_hostname
        assert security.librdkafka()["ssl.endpoint.identification.algorithm"] == "none"


def test_every_librdkafka_client_gets_the_security_and_tuning_still_passes_through() -> None:
    settings = dataclasses.replace(
        kafka(**{**SCRAM, "sasl_password": "direct", "sasl_password_env": ""}),
        librdkafka={"socket.keepalive.enable": "true"},
    )
    conf = client_config(settings, {"group.id": "g"})
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.password"] == "direct"
    assert conf["socket.keepalive.enable"] == "true" and conf["group.id"] == "g"


def test_the_password_comes_from_the_variable_named_and_is_never_shown() -> None:
    security = Security.of(kafka(**SCRAM), environ=ENV)
    assert security.password == "s3cret"
    assert "s3cret" not in repr(security) and "s3cret" not in security.describe()
    assert security.describe() == "SASL_SSL, SCRAM-SHA-512 as 'shadowtap', system CA store"


@pytest.mark.parametrize(
    ("keys", "env", "message"),
    [
        # a property only the librdkafka clients would see: the first-class key instead
        ({"librdkafka": {"security.protocol": "SSL"}}, {},
         "kafka.librdkafka['security.protocol'] would reach only the librdkafka clients, not "
         "the processor's aiokafka ones: use kafka.security_protocol instead"),
        ({**SCRAM, "librdkafka": {"sasl.password": "x"}}, ENV,
         "use kafka.sasl_password (or sasl_password_env) instead"),
        ({"librdkafka": {"bootstrap.servers": "other:9092"}}, {}, "use kafka.bootstrap"),
        # security aiokafka has no equivalent for: refused for every client
        ({**SCRAM, "librdkafka": {"sasl.kerberos.service.name": "kafka"}}, ENV,
         "kafka.librdkafka['sasl.kerberos.service.name'] is a security property the "
         "processor's aiokafka clients cannot honour"),
        ({"librdkafka": {"ssl.keystore.location": "/k.p12"}}, {}, "cannot honour"),
        ({"librdkafka": {"enable.ssl.certificate.verification": "false"}}, {}, "cannot honour"),
        # incomplete or contradictory settings
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, {},
         "kafka.sasl_mechanism is required with security_protocol = 'SASL_SSL': set it to "
         "'PLAIN' (Confluent Cloud), 'SCRAM-SHA-512' (Amazon MSK)"),
        ({**SCRAM, "sasl_username": ""}, ENV, "kafka.sasl_username is required"),
        ({**SCRAM, "sasl_password_env": ""}, {},
         "kafka.sasl_password is required with security_protocol = 'SASL_SSL': set "
         "kafka.sasl_password_env"),
        (SCRAM, {}, "kafka.sasl_password_env names the environment variable KAFKA_PASSWORD, "
         "which is not set or empty"),
        ({**SCRAM, "sasl_password": "p"}, ENV,
         "kafka.sasl_password and kafka.sasl_password_env are both set: keep one"),
        ({"sasl_username": "u"}, {},
         "kafka.sasl_username is set but kafka.security_protocol is 'PLAINTEXT', which does "
         "not use it: set security_protocol to SASL_SSL, or remove kafka.sasl_username"),
        ({**SCRAM, "security_protocol": "SSL"}, ENV, "kafka.sasl_mechanism is set but"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
          "sasl_password": "p", "ssl_ca_file": "/ca.pem"}, {},
         "kafka.ssl_ca_file is set but kafka.security_protocol is 'SASL_PLAINTEXT'"),
        ({"security_protocol": "SSL", "ssl_cert_file": "/c.pem"}, {},
         "kafka.ssl_cert_file and kafka.ssl_key_file go together (mTLS)"),
        ({"security_protocol": "SSL", "ssl_ca_file": "/nowhere/ca.pem"}, {},
         "kafka.ssl_ca_file = '/nowhere/ca.pem' cannot be loaded as PEM CA certificates"),
    ],
)  # fmt: skip
def test_what_some_client_could_not_honour_fails_at_start_up_naming_the_key(
    keys: dict[str, Any], env: dict[str, str], message: str
) -> None:
    settings = kafka(**keys)
    with pytest.raises(ConfigError) as info:
        Security.of(settings, environ=env)
    assert message in str(info.value)


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER", "scram-sha-512"])
def test_mechanisms_both_client_kinds_cannot_use_are_refused_when_loaded(mechanism: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(env={"SHADOWTAP_KAFKA_SASL_MECHANISM": mechanism})
    assert "'kafka.sasl_mechanism'" in str(info.value)
    assert "'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'" in str(info.value)


def test_a_client_key_that_does_not_load_fails_at_start_up(
    pki: tuple[TestCA, Issued], tmp_path: Path
) -> None:
    _, client = pki
    locked = client.encrypted_key(tmp_path / "locked.key", "key-pass")
    keys = {"security_protocol": "SSL", "ssl_cert_file": str(client.cert_file)}
    with pytest.raises(ConfigError) as info:
        Security.of(kafka(**keys, ssl_key_file=str(locked)), environ={})
    assert "an encrypted key needs kafka.ssl_key_password" in str(info.value)
    unlocked = Security.of(
        kafka(**keys, ssl_key_file=str(locked), ssl_key_password_env="KEY_PASS"),
        environ={"KEY_PASS": "key-pass"},
    )
    assert unlocked.librdkafka()["ssl.key.password"] == "key-pass"


def test_settings_reach_a_child_process_through_its_environment() -> None:
    settings = kafka(**SCRAM, ssl_check_hostname=False, librdkafka={"socket.nagle.disable": "true"})
    env = to_env("kafka", settings)
    assert env["SHADOWTAP_KAFKA_SASL_PASSWORD_ENV"] == "KAFKA_PASSWORD"
    assert env["SHADOWTAP_KAFKA_SSL_CHECK_HOSTNAME"] == "false"
    assert Settings.load(env=env).kafka == settings


AUTH = "authentication failed for user 'shadowtap' (SCRAM-SHA-512) at b-1.msk.example:9096"


@pytest.mark.parametrize(
    ("code", "text", "starts"),
    [
        (RdKafkaError._AUTHENTICATION,
         "sasl_ssl://b-1:9096/bootstrap: SASL authentication error: Authentication failed "
         "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
         AUTH),
        (RdKafkaError._SSL,
         "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: "
         "broker certificate could not be verified",
         "TLS: broker certificate not trusted by the system CA store at b-1.msk.example:9096"),
        (RdKafkaError._TRANSPORT,
         "Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL "
         "alert number 42", "TLS: broker at b-1.msk.example:9096 requires a client certificate"),
        (RdKafkaError._TRANSPORT,
         "SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to a "
         "PLAINTEXT broker listener?", "TLS: b-1.msk.example:9096 does not speak TLS"),
        (RdKafkaError._TRANSPORT, "Connect to ipv4#10.0.0.1:9096 failed: Connection refused",
         None),
        (RdKafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", None),
    ],
)  # fmt: skip
def test_librdkafka_security_failures_are_put_in_one_sentence_each(
    code: int, text: str, starts: str | None
) -> None:
    said = explain(RdKafkaError(code, text), kafka(**SCRAM))
    if starts is None:
        assert said is None  # may pass: a broker starting, a network blip
    else:
        assert said is not None and said.startswith(starts)
        assert text in said  # the client's own words follow


def test_aiokafka_security_failures_are_put_in_the_same_sentences(tmp_path: Path) -> None:
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

    settings = kafka(**SCRAM, ssl_ca_file="/etc/kafka/ca.pem")
    said = explain(SaslAuthenticationFailed("Authentication failed"), settings)
    assert said is not None and said.startswith(AUTH)
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_code = 19
    said = explain(untrusted, settings)
    assert said is not None
    assert said.startswith("TLS: broker certificate not trusted by CA file /etc/kafka/ca.pem")
    untrusted.verify_code = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH
    assert "does not name the host" in (explain(untrusted, settings) or "")
    refused = KafkaConnectionError("Connection at b-1:9096 closed")
    refused.__cause__ = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert")
    assert "requires a client certificate" in (explain(refused, settings) or "")
    assert explain(ConnectionRefusedError(111, "refused"), settings) is None


def test_the_capture_publisher_logs_a_security_failure_in_those_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shadowtap.producers.publisher import Publisher
    from tests.unit.producers.conftest import MemoryProducer

    settings = Settings.load(env=ENV, overrides={"kafka": SCRAM})
    publisher = Publisher(settings, producer=MemoryProducer(10))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="shadowtap.capture"):
        publisher._on_error(RdKafkaError(RdKafkaError._AUTHENTICATION, "invalid credentials"))
    assert f"shadowtap: Kafka client error: {AUTH}" in caplog.text
