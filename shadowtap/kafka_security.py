"""The one security config of every Kafka client: checked once, translated per client kind.

``[kafka]`` security (see shadowtap.config.KafkaSettings) is one structured thing,
``Security.of(settings.kafka)``, translated for each kind of client: ``librdkafka()`` for the
confluent-kafka clients of every stage (shadowtap.kafka.client_config), ``aiokafka()`` and
``faust()`` for the processor's Faust app. A setting that one kind of client could not honour
is refused with ConfigError: security properties in ``kafka.librdkafka``, SASL mechanisms
other than PLAIN and SCRAM, credentials without the protocol that uses them. Keys and what
they become:

======================  ==========================================  =========================
``[kafka]`` key         librdkafka                                  aiokafka / Faust
======================  ==========================================  =========================
security_protocol       security.protocol                           security_protocol
sasl_mechanism          sasl.mechanism                              sasl_mechanism
sasl_username           sasl.username                               sasl_plain_username
sasl_password(_env)     sasl.password                               sasl_plain_password
ssl_ca_file             ssl.ca.location                             ssl_context (cafile)
ssl_cert_file/key_file  ssl.certificate.location, ssl.key.location  ssl_context (cert chain)
ssl_key_password(_env)  ssl.key.password                            ssl_context (password)
ssl_check_hostname      ssl.endpoint.identification.algorithm       ssl_context.check_hostname
======================  ==========================================  =========================

What a refused password or certificate looks like, and the start-up check that says so, is
shadowtap.kafka_check.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadowtap.config import KafkaSettings
from shadowtap.errors import ConfigError

# librdkafka properties that [kafka] sets for every client: in ``librdkafka`` they would
# reach the confluent-kafka clients and not the processor's aiokafka ones.
_FIRST_CLASS = {
    "bootstrap.servers": "bootstrap",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_username",
    "sasl.password": "sasl_password (or sasl_password_env)",
    "ssl.ca.location": "ssl_ca_file",
    "ssl.certificate.location": "ssl_cert_file",
    "ssl.key.location": "ssl_key_file",
    "ssl.key.password": "ssl_key_password (or ssl_key_password_env)",
    "ssl.endpoint.identification.algorithm": "ssl_check_hostname",
}
# Any other property under these is security that aiokafka has no equivalent for.
_SECURITY_PREFIXES = (
    "security.",
    "sasl.",
    "ssl.",
    "ssl_",
    "enable.ssl.",
    "enable.sasl.",
    "oauthbearer",
    "https.",
)


@dataclass(frozen=True, slots=True)
class Security:
    """The security of every client: checked and resolved once, translated per client kind.

    ``Security.of(settings.kafka)`` raises ConfigError naming the key and the fix for
    anything some client could not honour, a password variable that is not set, or a CA,
    certificate or key file that cannot be loaded (the TLS context is built here, so a bad
    file fails at start-up, not at the first connection).
    """

    protocol: str
    mechanism: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    key_password: str = field(default="", repr=False)
    check_hostname: bool = True
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def of(cls, kafka: KafkaSettings, environ: Mapping[str, str] | None = None) -> Security:
        environ = os.environ if environ is None else environ
        _refuse_security_properties(kafka.librdkafka)
        protocol = kafka.security_protocol
        sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        tls = protocol in ("SSL", "SASL_SSL")
        _only_with(
            sasl,
            protocol,
            "SASL_SSL",
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_username=kafka.sasl_username,
            sasl_password=kafka.sasl_password,
            sasl_password_env=kafka.sasl_password_env,
        )
        _only_with(
            tls,
            protocol,
            "SSL or SASL_SSL",
            ssl_ca_file=kafka.ssl_ca_file,
            ssl_cert_file=kafka.ssl_cert_file,
            ssl_key_file=kafka.ssl_key_file,
            ssl_key_password=kafka.ssl_key_password,
            ssl_key_password_env=kafka.ssl_key_password_env,
            ssl_check_hostname=not kafka.ssl_check_hostname,
        )
        password = ""
        if sasl:
            if kafka.sasl_mechanism is None:
                raise ConfigError(
                    f"kafka.sasl_mechanism is required with security_protocol = {protocol!r}: "
                    "set it to 'PLAIN' (Confluent Cloud), 'SCRAM-SHA-512' (Amazon MSK) or "
                    "'SCRAM-SHA-256', as the cluster's listener expects"
                )
            if not kafka.sasl_username:
                raise ConfigError(
                    f"kafka.sasl_username is required with security_protocol = {protocol!r}"
                )
            password = _secret(kafka, "sasl_password", environ, required=True)
        key_password = ""
        if tls:
            if bool(kafka.ssl_cert_file) != bool(kafka.ssl_key_file):
                raise ConfigError(
                    "kafka.ssl_cert_file and kafka.ssl_key_file go together (mTLS): set both "
                    "or neither"
                )
            if (kafka.ssl_key_password or kafka.ssl_key_password_env) and not kafka.ssl_key_file:
                raise ConfigError("kafka.ssl_key_password is set but kafka.ssl_key_file is not")
            key_password = _secret(kafka, "ssl_key_password", environ, required=False)
        security = cls(
            protocol=protocol,
            mechanism=kafka.sasl_mechanism if sasl else None,
            username=kafka.sasl_username,
            password=password,
            ca_file=kafka.ssl_ca_file,
            cert_file=kafka.ssl_cert_file,
            key_file=kafka.ssl_key_file,
            key_password=key_password,
            check_hostname=kafka.ssl_check_hostname,
        )
        if not tls:
            return security
        return dataclasses.replace(security, ssl_context=_ssl_context(security))

    def librdkafka(self) -> dict[str, Any]:
        """The confluent-kafka (librdkafka) properties."""
        conf: dict[str, Any] = {"security.protocol": self.protocol}
        if self.uses_sasl:
            conf.update(
                {
                    "sasl.mechanism": self.mechanism,
                    "sasl.username": self.username,
                    "sasl.password": self.password,
                }
            )
        if self.uses_tls:
            conf["ssl.endpoint.identification.algorithm"] = (
                "https" if self.check_hostname else "none"
            )
            if self.ca_file:
                conf["ssl.ca.location"] = self.ca_file
            if self.cert_file:
                conf["ssl.certificate.location"] = self.cert_file
                conf["ssl.key.location"] = self.key_file
            if self.key_password:
                conf["ssl.key.password"] = self.key_password
        return conf

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's clients (``AIOKafkaClient``, ``create_conn``)."""
        conf: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            conf.update(
                {
                    "sasl_mechanism": self.mechanism,
                    "sasl_plain_username": self.username,
                    "sasl_plain_password": self.password,
                }
            )
        if self.uses_tls:
            conf["ssl_context"] = self.ssl_context
        return conf

    def faust(self) -> dict[str, Any]:
        """Keyword arguments of ``faust.App`` (``broker_credentials``), which hands them on
        to aiokafka just as ``aiokafka()`` says."""
        if self.protocol == "PLAINTEXT":
            return {}
        from faust.auth import SASLCredentials, SSLCredentials

        if self.uses_sasl:
            credentials: Any = SASLCredentials(
                username=self.username,
                password=self.password,
                ssl_context=self.ssl_context,
                mechanism=self.mechanism,
            )
        else:
            credentials = SSLCredentials(self.ssl_context)
        return {"broker_credentials": credentials}

    def describe(self) -> str:
        """What a log line or error may say about it (never a password)."""
        parts = [self.protocol]
        if self.uses_sasl:
            parts.append(f"{self.mechanism} as {self.username!r}")
        if self.uses_tls:
            parts.append(f"CA {self.ca_file}" if self.ca_file else "system CA store")
            if self.cert_file:
                parts.append(f"client certificate {self.cert_file}")
        return ", ".join(parts)


def _refuse_security_properties(props: Mapping[str, Any]) -> None:
    for key in props:
        if key in _FIRST_CLASS:
            raise ConfigError(
                f"kafka.librdkafka[{key!r}] would reach only the librdkafka clients, not the "
                f"processor's aiokafka ones: use kafka.{_FIRST_CLASS[key]} instead"
            )
        if key.startswith(_SECURITY_PREFIXES):
            raise ConfigError(
                f"kafka.librdkafka[{key!r}] is a security property the processor's aiokafka "
                "clients cannot honour, so shadowtap refuses it for every client; supported: "
                "kafka.security_protocol, sasl_mechanism (PLAIN, SCRAM-SHA-256, "
                "SCRAM-SHA-512), sasl_username, sasl_password(_env), ssl_ca_file, "
                "ssl_cert_file, ssl_key_file, ssl_key_password(_env), ssl_check_hostname"
            )


def _only_with(used: bool, protocol: str, wanted: str, **keys: Any) -> None:
    """Settings that ``protocol`` would silently ignore are a mistake: say so."""
    if used:
        return
    for key, value in keys.items():
        if value:
            raise ConfigError(
                f"kafka.{key} is set but kafka.security_protocol is {protocol!r}, which does "
                f"not use it: set security_protocol to {wanted}, or remove kafka.{key}"
            )


def _secret(kafka: KafkaSettings, key: str, environ: Mapping[str, str], *, required: bool) -> str:
    """``kafka.<key>`` itself, or the environment variable named by ``kafka.<key>_env``."""
    value: str = getattr(kafka, key)
    env_name: str = getattr(kafka, f"{key}_env")
    if value and env_name:
        raise ConfigError(f"kafka.{key} and kafka.{key}_env are both set: keep one")
    if env_name:
        value = environ.get(env_name, "")
        if not value:
            raise ConfigError(
                f"kafka.{key}_env names the environment variable {env_name}, which is not "
                "set or empty"
            )
    elif required and not value:
        raise ConfigError(
            f"kafka.{key} is required with security_protocol = {kafka.security_protocol!r}: "
            f"set kafka.{key}_env to the name of the environment variable holding it "
            f"(or SHADOWTAP_KAFKA_{key.upper()})"
        )
    return value


def _ssl_context(security: Security) -> ssl.SSLContext:
    """The TLS context aiokafka uses; built now so that a bad file fails at start-up."""
    try:
        context = ssl.create_default_context(cafile=security.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"kafka.ssl_ca_file = {security.ca_file!r} cannot be loaded as PEM CA "
            f"certificates: {exc}"
        ) from exc
    context.check_hostname = security.check_hostname
    if security.cert_file:
        try:
            context.load_cert_chain(
                security.cert_file, security.key_file, security.key_password or None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"kafka.ssl_cert_file = {security.cert_file!r} with kafka.ssl_key_file = "
                f"{security.key_file!r} cannot be loaded (PEM certificate and matching key; "
                f"an encrypted key needs kafka.ssl_key_password): {exc}"
            ) from exc
    return context
