"""The start-up check of every command: does the cluster answer, and does it accept us?

::

    wait_for_broker(settings.kafka)                              # every stage
    wait_for_broker(settings.kafka, clients=("librdkafka", "aiokafka"))  # the processor

A wrong password, an untrusted certificate or a refused client certificate is a clear
sentence (``explain``), not a retry loop: ``wait_for_broker`` raises it as soon as a client
reports it, and the capture publisher logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException

from shadowtap.config import KafkaSettings
from shadowtap.errors import BrokerError, KafkaSecurityError
from shadowtap.kafka import make_admin
from shadowtap.kafka_security import Security


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
    ``kafka.connect_timeout_s``); no answer at all raises BrokerError after ``timeout``.
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
            raise BrokerError(
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
    raise BrokerError(
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
