"""``shadowtap doctor`` against a real broker and a real guarded target: one setup where every
line passes, then each check made to fail (or warn) on its own, read from the command's exit
status and its ``--json`` report as a script would."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from shadowtap.cli import main
from shadowtap.config import Settings
from shadowtap.configload import to_env
from shadowtap.devkafka import free_port
from shadowtap.envelope import Envelope, encode
from shadowtap.guard import GuardWSGIMiddleware
from shadowtap.kafka import create_topics, make_producer
from shadowtap.types import Environ, StartResponse

KEY = "doctor-and-staging-share-this"
OURS = {
    "SHADOWTAP_MARKING_KEY": KEY,
    "SHADOWTAP_PROCESSOR_SCRUB_KEY": "our-scrub-key",
    "SHADOWTAP_CAPTURE_HASH_KEY": "our-hash-key",
}
EVERY_CHECK = (
    "kafka", "production-target", "marking-key", "target-answers", "guard", "scrub-key",
    "capture-hash-key", "collector-secret", "topics", "idempotency",
)  # fmt: skip


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"staging"]


@pytest.fixture(scope="module")
def staging() -> Iterator[Callable[[str], str]]:
    """Guarded staging apps on local ports, by the marking key they trust."""
    servers: list[Any] = []
    urls: dict[str, str] = {}

    def serve(key: str) -> str:
        if key in urls:
            return urls[key]
        guarded = GuardWSGIMiddleware(
            _app, Settings.load(env={}, overrides={"marking": {"key": key}})
        )
        server = make_server("127.0.0.1", 0, guarded, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[key] = f"http://127.0.0.1:{server.server_port}"
        return urls[key]

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def production(settings: Settings) -> str:
    """Where the mirror topic's records say production is (nothing listens there)."""
    create_topics(settings)
    address = f"127.0.0.1:{free_port()}"
    producer = make_producer(settings.kafka)
    for method in ("GET", "PUT"):
        producer.produce(settings.topics.mirror, encode(Envelope(method, "/cart", host=address)))
    assert producer.flush(10) == 0
    return f"http://{address}"


Doctor = Callable[..., tuple[int, dict[str, str]]]


@pytest.fixture
def doctor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Doctor:
    """Run ``shadowtap doctor --json --target`` with ``settings`` and these variables."""

    def run(target: str, env: dict[str, str], kafka: dict[str, Any] | None = None) -> Any:
        for name in [n for n in os.environ if n.startswith("SHADOWTAP_")]:
            monkeypatch.delenv(name)
        chosen = dataclasses.replace(settings.kafka, **(kafka or {}))
        for name, value in {
            **to_env("kafka", chosen), **to_env("topics", settings.topics), **env
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(["doctor", "--json", "--target", target])
        report = json.loads(capsys.readouterr().out)
        assert report["passed"] is (code == 0)
        return code, {f["check"]: f["status"] for f in report["findings"]}

    return run


def test_a_proper_target_passes_every_check(
    doctor: Doctor, production: str, staging: Callable[[str], str]
) -> None:
    code, found = doctor(staging(KEY), OURS)
    assert (code, found) == (0, dict.fromkeys(EVERY_CHECK, "pass"))


@pytest.mark.parametrize(
    ("case", "failed"),
    [
        ("production", "production-target"),
        ("silent target", "target-answers"),
        ("guard with another key", "guard"),
        ("development scrub key", "scrub-key"),
        ("no capture hash key", "capture-hash-key"),
        ("open collector", "collector-secret"),
        ("missing topic", "topics"),
        ("development marking key off this machine", "marking-key"),
        ("kafka down", "kafka"),
    ],
)
def test_each_failing_check_fails_the_command(
    doctor: Doctor,
    *,
    production: str,
    staging: Callable[[str], str],
    settings: Settings,
    case: str,
    failed: str,
) -> None:
    target, env, kafka = staging(KEY), dict(OURS), None
    if case == "production":
        target = production
    elif case == "silent target":
        target = f"http://127.0.0.1:{free_port()}"
    elif case == "guard with another key":
        target = staging("the target's own key")
    elif case == "development scrub key":
        env["SHADOWTAP_PROCESSOR_SCRUB_KEY"] = "shadowtap-development-key"
    elif case == "no capture hash key":
        del env["SHADOWTAP_CAPTURE_HASH_KEY"]
    elif case == "open collector":
        env["SHADOWTAP_CAPTURE_COLLECTOR_HOST"] = "0.0.0.0"
    elif case == "missing topic":
        env["SHADOWTAP_TOPICS_RESULTS"] = settings.topics.results + "-never-created"
    elif case == "development marking key off this machine":
        del env["SHADOWTAP_MARKING_KEY"]
        target = "http://staging.invalid:8080"
    elif case == "kafka down":
        kafka = {"bootstrap": f"127.0.0.1:{free_port()}", "connect_timeout_s": 2}
    code, found = doctor(target, env, kafka)
    assert code == 1
    assert found[failed] == "fail", found
    assert list(found) == list(EVERY_CHECK)  # each check still has its line


def test_topics_of_another_size_or_retention_and_replayed_posts_warn(
    doctor: Doctor, production: str, staging: Callable[[str], str], settings: Settings
) -> None:
    producer = make_producer(settings.kafka)
    producer.produce(settings.topics.mirror, encode(Envelope("POST", "/orders", host="shop:80")))
    assert producer.flush(10) == 0
    env = {**OURS, "SHADOWTAP_TOPICS_PARTITIONS": "4", "SHADOWTAP_TOPICS_DLQ_RETENTION_HOURS": "1"}
    code, found = doctor(staging(KEY), env)
    assert code == 0
    assert found["topics"] == "warn" and found["idempotency"] == "warn", found
