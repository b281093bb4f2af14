"""The local broker's failure modes that need no broker: missing tools, Docker probing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from shadowtap import devkafka, devkafka_jars, devkafka_secure
from shadowtap.errors import DevKafkaError


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHADOWTAP_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("missing", "message"), [("java", "Java is not installed"), ("mvn", "Maven is not installed")]
)
def test_missing_java_or_maven_says_so_and_how_to_fix_it(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, missing: str, message: str
) -> None:
    monkeypatch.setattr(
        devkafka_jars.shutil, "which", lambda tool: None if tool == missing else f"/usr/bin/{tool}"
    )
    with pytest.raises(DevKafkaError) as info:
        devkafka_jars.ensure_jars()
    assert message in str(info.value)
    assert "apt-get install" in str(info.value) and "SHADOWTAP_BOOTSTRAP" in str(info.value)


def test_cache_dir_follows_environment(empty_cache: Path) -> None:
    assert devkafka_jars.jars_dir().is_relative_to(empty_cache)


def test_docker_probe_is_false_without_an_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    assert devkafka.docker_available(timeout=0.2) is False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    assert devkafka.docker_available(timeout=0.2) is False


def test_free_port_prefers_the_asked_port_when_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        taken = sock.getsockname()[1]
        assert devkafka.free_port(taken) != taken
    assert devkafka.free_port(None) > 0


def test_status_of_a_never_started_instance_is_none(empty_cache: Path) -> None:
    assert devkafka.LocalKafka("nothing-here").status() is None
    assert devkafka.LocalKafka("nothing-here").stop() is False


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # The storage tool would read "-t -abc…" as an option: one random id in 64 starts so.
    import uuid

    ids = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=bytes(16))])
    monkeypatch.setattr(devkafka.uuid, "uuid4", lambda: next(ids))
    assert devkafka.new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_secured_listeners_create_each_user_for_both_scram_mechanisms_and_plain() -> None:
    secure = devkafka_secure.SecureListeners("/b.p12", "store-pw", "/ca.pem", (("app", "s3-cret"),))
    assert secure.format_arguments() == [
        "--add-scram", "SCRAM-SHA-256=[name=app,password=s3-cret]",
        "--add-scram", "SCRAM-SHA-512=[name=app,password=s3-cret]",
    ]  # fmt: skip
    props = secure.properties()
    assert 'user_app="s3-cret";' in props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert props["ssl.truststore.location"] == "/ca.pem"


@pytest.mark.parametrize("user", [("a b", "pw"), ("app", 'p"w'), ("app", "p,w]")])
def test_secured_listeners_refuse_users_a_jaas_line_or_the_storage_tool_would_misread(
    user: tuple[str, str],
) -> None:
    with pytest.raises(DevKafkaError, match="may hold only letters, digits"):
        devkafka_secure.SecureListeners("/b.p12", "pw", "/ca.pem", (user,))
