"""Doctor's checks that need no broker: keys, the collector's secret, the signed probe against
real local servers (with and without the guard), and the idempotency warning."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from shadowtap.config import Settings
from shadowtap.doctor import capture_hash_key, collector_secret, idempotency, probe, scrub_key
from shadowtap.envelope import Envelope
from shadowtap.guard import GuardWSGIMiddleware
from shadowtap.preflight import Status
from shadowtap.types import Environ, StartResponse

KEY = "doctor-and-target-share-this"


def _settings(**sections: dict[str, Any]) -> Settings:
    return Settings.load(env={}, overrides=sections)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such page"]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_guarded_target_trusts_the_signed_probe(serve: Any) -> None:
    settings = _settings(marking={"key": KEY})
    target = serve(GuardWSGIMiddleware(_app, settings))
    answered, guard, headers = probe(settings, target + "/base")
    assert answered.status is Status.PASS and "answered 404" in answered.found
    assert guard.status is Status.PASS, guard
    assert headers is not None and headers["x-shadowtap-guard"] == "mirrored"


def test_a_guard_with_another_key_fails_and_a_plain_server_warns(serve: Any) -> None:
    target = serve(GuardWSGIMiddleware(_app, _settings(marking={"key": "the target's own"})))
    _, guard, _ = probe(_settings(marking={"key": KEY}), target)
    assert guard.status is Status.FAIL
    assert "bad-signature" in guard.found and "same [marking] key" in guard.fix
    _, guard, _ = probe(_settings(marking={"key": KEY}), serve(_app))
    assert guard.status is Status.WARN and "install shadowtap.guard" in guard.fix


def test_a_target_that_does_not_answer_fails() -> None:
    from shadowtap.devkafka import free_port

    answered, guard, headers = probe(_settings(), f"http://127.0.0.1:{free_port()}", 2)
    assert answered.status is Status.FAIL and guard.status is Status.WARN and headers is None


def test_the_idempotency_warning_and_the_apps_word(serve: Any) -> None:
    settings = _settings(marking={"key": KEY}, replayer={"target": "http://stg"})
    posts = [Envelope("POST", "/orders"), Envelope("GET", "/orders")]
    warned = idempotency(settings, posts, {"x-shadowtap-guard": "mirrored"})
    assert warned.status is Status.WARN and "POST requests are replayed" in warned.found
    denied = _settings(replayer={"target": "http://stg", "deny": [{"methods": ["POST"]}]})
    assert idempotency(denied, posts, None).status is Status.PASS
    assert idempotency(settings, posts[1:], None).status is Status.PASS
    honours = _settings(marking={"key": KEY}, guard={"honours_idempotency_key": True})
    _, _, headers = probe(settings, serve(GuardWSGIMiddleware(_app, honours)))
    assert headers is not None
    assert headers["x-shadowtap-guard"] == "mirrored; idempotency-key=honoured"
    assert idempotency(settings, posts, headers).status is Status.PASS
    assert idempotency(settings, posts, None, "Kafka did not answer").status is Status.WARN


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ({}, Status.FAIL),
        ({"processor": {"scrub_key": "shadowtap-development-key"}}, Status.FAIL),
        ({"processor": {"scrub_key": "ours"}, "capture": {"hash_key": "ours too"}}, Status.PASS),
    ],
)
def test_keys_must_be_set_and_not_the_development_key(
    settings: dict[str, Any], status: Status
) -> None:
    s = _settings(**settings)
    assert scrub_key(s).status is status
    assert capture_hash_key(s).status is status


@pytest.mark.parametrize(
    ("capture", "status"),
    [
        ({}, Status.PASS),
        ({"collector_host": "localhost"}, Status.PASS),
        ({"collector_host": "0.0.0.0"}, Status.FAIL),
        ({"collector_host": "0.0.0.0", "collector_secret": "s3cret"}, Status.PASS),
    ],
)
def test_the_collector_needs_a_secret_beyond_loopback(
    capture: dict[str, str], status: Status
) -> None:
    assert collector_secret(_settings(capture=capture)).status is status
