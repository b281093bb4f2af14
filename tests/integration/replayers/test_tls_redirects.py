"""TLS verification (on by default, private CA option) and redirects never followed."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shadowtap.config import Settings
from tests.integration.replayers.conftest import (
    Reader,
    TargetServer,
    ThreadWorker,
    envelopes,
    produce,
    with_replayer,
)


@pytest.fixture
def tls_target(tmp_path: Path) -> Iterator[tuple[TargetServer, Path]]:
    """A target with a certificate for 127.0.0.1 from a throwaway CA (openssl CLI)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = TargetServer(ssl_context=context)
    yield server, cert
    server.stop()


def test_tls_is_verified_by_default_and_a_private_ca_can_be_configured(
    rsettings: Settings,
    tls_target: tuple[TargetServer, Path],
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    server, ca = tls_target
    strict = with_replayer(rsettings, target=server.url, connect_retry_s=0)
    produce(strict, list(envelopes(2)))
    worker = thread_worker(strict)
    dlq = reader(strict.topics.dlq)
    dlq.until(lambda r: len(r.messages) >= 2)
    error = dict(dlq.messages[0].headers())["shadowtap-dlq-error"].decode()
    assert "certificate" in error.lower(), error
    assert server.seen == []
    worker.stop()

    trusting = with_replayer(strict, ca_file=str(ca), group=strict.replayer.group + "-ca")
    thread_worker(trusting)
    out = reader(trusting.topics.results)
    out.until(lambda r: len([x for x in r.results() if x.status == 200]) >= 2)
    assert len(server.seen) == 2


def test_redirects_are_recorded_never_followed(
    rsettings: Settings,
    target: TargetServer,
    thread_worker: Callable[[Settings], ThreadWorker],
    reader: Callable[[str], Reader],
) -> None:
    elsewhere = TargetServer()
    try:
        target.mode = f"redirect:{elsewhere.url}/stolen"
        s = with_replayer(rsettings, target=target.url)
        produce(s, list(envelopes(3)))
        thread_worker(s)
        out = reader(s.topics.results)
        out.until(lambda r: len(r.messages) >= 3)
        assert {r.status for r in out.results()} == {302}
        assert elsewhere.seen == []
    finally:
        elsewhere.stop()
