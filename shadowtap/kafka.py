"""confluent-kafka factories, the one security config of every client, and the topics.

Every stage builds its clients here so that bootstrap servers, security and compression are
configured in one place::

    producer = make_producer(settings.kafka, {"linger.ms": 5})
    consumer = make_consumer(settings.kafka, group="staging")
    create_topics(settings)          # idempotent: existing topics are left as they are
    wait_for_broker(settings.kafka)  # start-up check: fails in seconds, saying why

Security (``[kafka]``, see shadowtap.config.KafkaSettings) is one structured thing,
``Security``, checked once and translated for each kind of client: ``librdkafka()`` for the
confluent-kafka clients of every stage, ``aiokafka()`` and ``faust()`` for the processor's
Faust app. A setting that one kind of client could not honour is refused with ConfigError:
security properties in ``kafka.librdkafka``, SASL mechanisms other than PLAIN and SCRAM,
credentials without the protocol that uses them. Keys and what they become:

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

A wrong password, an untrusted certificate or a refused client certificate is a clear
sentence (``explain``), not a retry loop: ``wait_for_broker`` raises it as soon as a client
reports it, and the capture publisher logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from shadowtap.config import KafkaSettings, Settings, TopicSettings
from shadowtap.errors import ConfigError, KafkaError, KafkaSecurityError

_HOUR_MS = 3_600_000
# librdkafka's own log lines go through Python logging instead of raw stderr.
LIBRDKAFKA_LOGGER = logging.getLogger("shadowtap.librdkafka")

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


def client_config(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka properties shared by every client: bootstrap, security, then
    ``kafka.librdkafka``, then ``extra``. Raises ConfigError for a bad security setting."""
    conf: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap,
        "client.id": kafka.client_id,
        "logger": LIBRDKAFKA_LOGGER,
    }
    conf.update(Security.of(kafka).librdkafka())
    conf.update(kafka.librdkafka)
    conf.update(extra or {})
    return conf


def make_producer(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> Producer:
    """A producer with idempotence-friendly defaults; ``extra`` overrides them."""
    base = {
        "compression.type": kafka.compression,
        "linger.ms": 5,
        "acks": "all",
        "enable.idempotence": True,
    }
    return Producer(client_config(kafka, {**base, **(extra or {})}))


def make_consumer(
    kafka: KafkaSettings, group: str, extra: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer in ``group`` that commits only when told (at-least-once)."""
    base = {
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    return Consumer(client_config(kafka, {**base, **(extra or {})}))


def make_admin(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> AdminClient:
    return AdminClient(client_config(kafka, extra))


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as shadowtap wants it."""

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int
    compacted: bool = False  # keep the latest record per key (and drop keys after retention)

    @property
    def config(self) -> dict[str, str]:
        config = {"retention.ms": str(self.retention_ms)}
        if self.compacted:
            config["cleanup.policy"] = "compact,delete"
        return config


def topic_specs(topics: TopicSettings) -> list[TopicSpec]:
    """The topics of DESIGN.md with their configured size and retention.

    The redrive markers (shadowtap.redrive) outlive the DLQ records they mark.
    """

    def spec(name: str, hours: float) -> TopicSpec:
        return TopicSpec(name, topics.partitions, topics.replication_factor, int(hours * _HOUR_MS))

    return [
        spec(topics.captured, topics.captured_retention_hours),
        spec(topics.mirror, topics.mirror_retention_hours),
        spec(topics.results, topics.results_retention_hours),
        spec(topics.dlq, topics.dlq_retention_hours),
        TopicSpec(
            topics.redriven,
            1,
            topics.replication_factor,
            int(2 * topics.dlq_retention_hours * _HOUR_MS),
            compacted=True,
        ),
    ]


def retry_topic_spec(topics: TopicSettings, group: str) -> TopicSpec:
    """Replayer ``group``'s retry topic: redriven records, clean like the mirror."""
    return TopicSpec(
        topics.retry(group),
        topics.partitions,
        topics.replication_factor,
        int(topics.mirror_retention_hours * _HOUR_MS),
    )


def create_topics(
    settings: Settings, timeout: float = 30.0, specs: list[TopicSpec] | None = None
) -> dict[str, str]:
    """Create missing topics (``specs``, default those of DESIGN.md); return
    ``{name: "created" | "exists"}``. Safe to run twice."""
    admin = make_admin(settings.kafka)
    specs = topic_specs(settings.topics) if specs is None else specs
    existing = set(_list_topics(admin, timeout))
    wanted = [s for s in specs if s.name not in existing]
    result = {s.name: "exists" for s in specs if s.name in existing}
    if wanted:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in wanted],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                result[name] = "created"
            except KafkaException as exc:
                if (
                    exc.args
                    and getattr(exc.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS"
                ):
                    result[name] = "exists"
                else:
                    raise KafkaError(f"could not create topic {name}: {exc}") from exc
        _await_visible(admin, [s.name for s in wanted], timeout)
    return result


def _await_visible(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Wait until the broker's metadata shows newly created topics.

    A consumer that subscribes to a topic its broker does not show yet finds it only at its
    next metadata refresh (``topic.metadata.refresh.interval.ms``, five minutes).
    """
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            found = _metadata(admin, timeout).topics.get(name)
            if found is not None and found.error is None and found.partitions:
                break
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"topic {name} was created but is not visible after {timeout:.0f}s"
                )
            time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    replication_factor: int
    retention_ms: int | None


def describe_topics(settings: Settings, timeout: float = 15.0) -> list[TopicInfo | None]:
    """What the cluster has for each configured topic (None where it does not exist)."""
    admin = make_admin(settings.kafka)
    metadata = _metadata(admin, timeout)
    out: list[TopicInfo | None] = []
    for spec in topic_specs(settings.topics):
        topic = metadata.topics.get(spec.name)
        if topic is None or topic.error is not None:
            out.append(None)
            continue
        partitions = list(topic.partitions.values())
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        try:
            configs = admin.describe_configs([resource])[resource].result(timeout)
            retention = int(configs["retention.ms"].value)
        except (KafkaException, KeyError, ValueError):
            retention = None
        out.append(
            TopicInfo(
                spec.name,
                len(partitions),
                len(partitions[0].replicas) if partitions else 0,
                retention,
            )
        )
    return out


def partition_count(kafka: KafkaSettings, topic: str, timeout: float = 15.0) -> int | None:
    """How many partitions ``topic`` has on the cluster (None if it does not exist)."""
    found = _metadata(make_admin(kafka), timeout).topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def wait_for_broker(
    kafka: KafkaSettings,
    timeout: float | None = None,
    *,
    clients: tuple[str, ...] = ("librdkafka",),
) -> int:
    """Block until the cluster answers a metadata request; return the number of brokers.

    The start-up check of every command: a wrong password, an untrusted broker certificate
    or a refused client certificate raises KafkaSecurityError saying which as soon as a
    client reports it (about a second), not after ``timeout`` (default
    ``kafka.connect_timeout_s``); no answer at all raises KafkaError after ``timeout``.
    Refused connections are waited out: a broker may be starting. ``clients`` says which
    translations to try: ``librdkafka`` (every stage) and ``aiokafka`` (the processor's Faust
    app); the number of brokers is librdkafka's (0 when only aiokafka is tried).
    """
    security = Security.of(kafka)
    timeout = kafka.connect_timeout_s if timeout is None else timeout
    deadline = time.monotonic() + timeout
    brokers = 0
    if "librdkafka" in clients:
        brokers = _try_librdkafka(kafka, security, timeout, deadline)
    if "aiokafka" in clients:
        # On a thread of its own: asyncio.run here would leave this thread without the
        # event loop the caller (Faust) may count on.
        probe = _try_aiokafka(kafka, security, max(1.0, deadline - time.monotonic()))
        with ThreadPoolExecutor(1, thread_name_prefix="shadowtap-aiokafka-check") as pool:
            pool.submit(asyncio.run, probe).result()
    return brokers


def _try_librdkafka(
    kafka: KafkaSettings, security: Security, timeout: float, deadline: float
) -> int:
    reported: list[RdKafkaError] = []
    # Our own sentence says why; librdkafka's repeated connect failures stay out of the log.
    admin = make_admin(kafka, {"log_level": 2, "error_cb": reported.append})
    last: Any = None
    while True:
        try:
            brokers = len(admin.list_topics(timeout=min(0.25, timeout)).brokers)
            break
        except KafkaException as exc:
            last = exc.args[0] if exc.args else exc
        admin.poll(0)
        for err in reported:
            cause = explain(err, kafka)
            if cause is not None:
                raise KafkaSecurityError(cause)
            last = err
        reported.clear()
        if time.monotonic() >= deadline:
            raise KafkaError(
                f"Kafka at {kafka.bootstrap} did not answer within {timeout:g}s "
                f"({security.describe()}): {_text(last)}; check kafka.bootstrap and that the "
                f"listener speaks {security.protocol}"
            )
    return brokers


async def _try_aiokafka(kafka: KafkaSettings, security: Security, timeout: float) -> None:
    """Connect (TLS handshake, SASL) to a bootstrap server as aiokafka, with ``aiokafka()``."""
    from aiokafka.conn import collect_hosts, create_conn

    last: BaseException | None = None
    for host, port, _family in collect_hosts(kafka.bootstrap, randomize=False):
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id=kafka.client_id,
                    request_timeout_ms=int(timeout * 1000),
                    **security.aiokafka(),
                ),
                timeout,
            )
        except Exception as exc:
            cause = explain(exc, kafka)
            if cause is not None:
                raise KafkaSecurityError(f"{cause} [aiokafka, the processor's client]") from exc
            last = exc
            continue
        # TLS closes in a few turns of the loop: wait, or the socket outlives the loop.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(conn.close(), 1.0)
        return
    raise KafkaError(
        f"the processor's aiokafka client could not connect to {kafka.bootstrap} "
        f"({security.describe()}): {last!r}"
    )


def explain(err: Any, kafka: KafkaSettings) -> str | None:
    """A clear sentence for a security failure: a librdkafka error or an aiokafka exception.

    None when ``err`` is not one (a refused connection, a timeout): those may pass.
    """
    kind, detail = _classify(err)
    if kind is None:
        return None
    where = kafka.bootstrap
    if kind == "auth":
        return (
            f"authentication failed for user {kafka.sasl_username!r} ({kafka.sasl_mechanism}) "
            f"at {where}: check kafka.sasl_username and the password (kafka.sasl_password, or "
            f"the variable named by kafka.sasl_password_env) [{detail}]"
        )
    if kind == "untrusted":
        trusted_by = f"CA file {kafka.ssl_ca_file}" if kafka.ssl_ca_file else "the system CA store"
        return (
            f"TLS: broker certificate not trusted by {trusted_by} at {where}: set "
            f"kafka.ssl_ca_file to the CA that signed the broker's certificate [{detail}]"
        )
    if kind == "hostname":
        return (
            f"TLS: broker certificate does not name the host in kafka.bootstrap ({where}): "
            f"connect by a name it has, or set kafka.ssl_check_hostname = false [{detail}]"
        )
    if kind == "client-cert":
        if kafka.ssl_cert_file:
            return (
                f"TLS: broker at {where} refused the client certificate {kafka.ssl_cert_file} "
                f"(kafka.ssl_cert_file): it must be signed by a CA the broker trusts [{detail}]"
            )
        return (
            f"TLS: broker at {where} requires a client certificate (mTLS): set "
            f"kafka.ssl_cert_file and kafka.ssl_key_file [{detail}]"
        )
    return (  # "not-tls"
        f"TLS: {where} does not speak TLS (a PLAINTEXT or SASL_PLAINTEXT listener), but "
        f"kafka.security_protocol is {kafka.security_protocol!r}: check it and the port "
        f"[{detail}]"
    )


# What librdkafka (OpenSSL) and Python's ssl module say, mapped to one kind each.
# TLS alerts come from the broker, about our client certificate (ours about its certificate
# are raised here as verification errors instead).
_CLIENT_CERT_REFUSED = (
    "alert bad certificate",
    "alert certificate required",
    "alert certificate unknown",
    "alert unknown ca",
    "bad_certificate",
    "certificate_required",
    "certificate_unknown",
    "unknown_ca",
)
_HOSTNAME = ("hostname mismatch", "ip address mismatch")
_X509_HOSTNAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH


def _classify(err: Any) -> tuple[str | None, str]:
    if isinstance(err, RdKafkaError):
        text = err.str()
        lowered = text.lower()
        if err.code() == RdKafkaError._AUTHENTICATION:
            return "auth", text
        if any(s in lowered for s in _CLIENT_CERT_REFUSED):
            return "client-cert", text
        if err.code() == RdKafkaError._SSL and any(s in lowered for s in _HOSTNAME):
            return "hostname", text
        if err.code() == RdKafkaError._SSL and "certificate verify failed" in lowered:
            return "untrusted", text
        if "connecting to a plaintext broker listener" in lowered:
            return "not-tls", text
        return None, text
    if not isinstance(err, BaseException):
        return None, str(err)
    try:
        from aiokafka.errors import SaslAuthenticationFailed
    except ImportError:  # the capture-only install: only librdkafka errors come here
        return None, f"{type(err).__name__}: {err}"
    chain = [err, err.__cause__, err.__context__]
    for exc in (e for e in chain if e is not None):
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SaslAuthenticationFailed):
            return "auth", text
        if isinstance(exc, ssl.SSLCertVerificationError):
            if exc.verify_code in _X509_HOSTNAME_MISMATCH:
                return "hostname", text
            return "untrusted", text
        if isinstance(exc, ssl.SSLError):
            lowered = text.lower()
            if any(s in lowered for s in _CLIENT_CERT_REFUSED):
                return "client-cert", text
            if "wrong_version_number" in lowered or "record layer failure" in lowered:
                return "not-tls", text
    return None, f"{type(err).__name__}: {err}"


def _text(err: Any) -> str:
    if isinstance(err, RdKafkaError):
        return str(err.str())
    return "no answer" if err is None else str(err)


def _metadata(admin: AdminClient, timeout: float) -> Any:
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(f"Kafka did not answer within {timeout:.0f}s: {exc}") from exc


def _list_topics(admin: AdminClient, timeout: float) -> list[str]:
    return list(_metadata(admin, timeout).topics)
