"""The local broker's secured listeners: SASL_SSL and mTLS beside the plaintext one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shadowtap.errors import DevKafkaError

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class SecureListeners:
    """TLS material and users for a local broker's secured listeners, made by the caller.

    The broker then also listens with SASL_SSL (``users`` as SCRAM-SHA-256, SCRAM-SHA-512 and
    PLAIN credentials) and with SSL that requires a client certificate signed by a CA in
    ``client_ca_file`` (PEM). ``keystore`` is a PKCS#12 file holding the broker's key and
    certificate; clients must trust the CA that signed it.
    """

    keystore: str
    keystore_password: str
    client_ca_file: str
    users: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name, password in self.users:
            # Both end up inside a JAAS line and a StorageTool argument: keep them plain.
            if not _PLAIN_TOKEN.fullmatch(name) or not _PLAIN_TOKEN.fullmatch(password):
                raise DevKafkaError(
                    f"SCRAM user {name!r}: names and passwords of the local broker's users "
                    "may hold only letters, digits, '.', '_' and '-'"
                )

    def properties(self) -> dict[str, str]:
        """Broker properties of the SASL_SSL and MTLS listeners (beside the plaintext one)."""
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.users)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": self.keystore,
            "ssl.keystore.password": self.keystore_password,
            "ssl.key.password": self.keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.client_ca_file,
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        }

    def format_arguments(self) -> list[str]:
        """``StorageTool format`` arguments that create the SCRAM users."""
        return [
            arg
            for name, password in self.users
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]
