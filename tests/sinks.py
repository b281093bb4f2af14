"""Real local stand-ins for the outside world a staging app must not reach from mirrored work.

- ``HTTPSink``: a threaded WSGI server on 127.0.0.1 that plays a payment API and a webhook
  receiver: it answers every request ``200 {"ok": true}`` and records ``METHOD path?query``;
  ``/redirect?to=URL`` answers 302 to URL.
- ``SMTPSink``: aiosmtpd's SMTP server on 127.0.0.1, recording each delivered message.

Both run in a thread of the test process and count what reached them, so a test can say
"zero calls arrived" and mean it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from aiosmtpd.controller import Controller

from shadowtap.devkafka import free_port


class HTTPSink:
    """Records ``METHOD path?query`` of every request it receives."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, _ThreadingServer, _QuietHandler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        query = environ.get("QUERY_STRING", "")
        with self._lock:
            self.calls.append(
                f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
                + (f"?{query}" if query else "")
            )
        headers = [("Content-Type", "application/json")]
        to = parse_qs(query).get("to")
        if to:
            start_response("302 Found", [*headers, ("Location", to[0])])
        else:
            start_response("200 OK", headers)
        return [b'{"ok": true}']

    def matching(self, text: str) -> list[str]:
        with self._lock:
            return [call for call in self.calls if text in call]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SMTPSink:
    """Records every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def matching(self, text: str) -> list[Message]:
        return [m for m in list(self.messages) if text in str(m.get("Subject", ""))]

    def close(self) -> None:
        self.controller.stop()


def sinks() -> Iterator[tuple[HTTPSink, SMTPSink]]:
    """Both sinks for a fixture, closed afterwards."""
    http, smtp = HTTPSink(), SMTPSink()
    try:
        yield http, smtp
    finally:
        http.close()
        smtp.close()
