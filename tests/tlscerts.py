"""Throwaway certificate authorities for tests that speak TLS to Kafka.

A test PKI made with ``cryptography`` in a few milliseconds (ECDSA P-256 keys): a CA, a
broker certificate for 127.0.0.1/localhost in a PKCS#12 keystore Java can read, and client
certificates for mTLS, all as files::

    ca = TestCA.create(tmp / "ca", "shadowtap test CA")
    broker = ca.issue(tmp / "broker", "broker", server=True)
    keystore = broker.pkcs12(tmp / "broker.p12", password="changeit")
    client = ca.issue(tmp / "client", "shadowtap-client")   # client.cert_file, client.key_file
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, in memory and as PEM files."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path
    ca_cert: x509.Certificate

    def pkcs12(self, path: Path, password: str) -> Path:
        """Key, certificate and CA in a PKCS#12 keystore with encryption Java 17 reads."""
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password.encode())
        )
        data = pkcs12.serialize_key_and_certificates(
            b"shadowtap", self.key, self.cert, [self.ca_cert], encryption
        )
        return _write(path, data)

    def encrypted_key(self, path: Path, password: str) -> Path:
        """The key again as encrypted PKCS#8 PEM (for clients given a key password)."""
        data = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode()),
        )
        return _write(path, data)


@dataclass(frozen=True)
class TestCA:
    """A self-signed certificate authority; its certificate is ``cert_file`` (PEM)."""

    __test__ = False  # not a pytest test class

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    @classmethod
    def create(cls, directory: Path, common_name: str) -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path = _write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, path)

    def issue(self, directory: Path, common_name: str, *, server: bool = False) -> Issued:
        """A leaf certificate: for 127.0.0.1 and localhost when ``server``, else a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file = _write(
            directory / f"{common_name}.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        key_file = _write(
            directory / f"{common_name}.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        return Issued(cert, key, cert_file, key_file, self.cert)
