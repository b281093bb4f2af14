"""The drill's reachability check against a real local HTTP server and a closed port."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shadowtap.config import Settings
from shadowtap.drill.reach import reachability
from shadowtap.preflight import Status


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _settings(target: str) -> Settings:
    settings = Settings.load(env={})
    return dataclasses.replace(
        settings, replayer=dataclasses.replace(settings.replayer, target=target)
    )


def test_a_reachable_target_passes_each_step(server: str) -> None:
    found = reachability(_settings(server), server, health="/healthz")
    assert [(f.check, f.status) for f in found] == [
        ("target-dns", Status.PASS),
        ("target-tcp", Status.PASS),
        ("target-answers", Status.PASS),
    ]
    assert "/healthz answered 200" in found[-1].found


def test_a_closed_port_stops_at_tcp_and_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    target = f"http://127.0.0.1:{port}"
    found = reachability(_settings(target), target)
    assert [(f.check, f.status) for f in found] == [
        ("target-dns", Status.PASS),
        ("target-tcp", Status.FAIL),
    ]
    assert f"127.0.0.1:{port} refused" in found[-1].found and found[-1].fix


def test_a_name_that_does_not_resolve_stops_at_dns() -> None:
    target = "http://no-such-host.invalid"
    (found,) = reachability(_settings(target), target)
    assert found.check == "target-dns" and found.status is Status.FAIL
