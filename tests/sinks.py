"""Real local stand-ins for the outside world a staging app must not reach from mirrored work.

- ``HTTPSink``: a threaded HTTP server on 127.0.0.1 that plays a payment API and a webhook
  receiver: it answers every request ``200 {"ok": true}`` and records ``METHOD path``;
  ``GET /redirect?to=URL`` answers 302 to URL.
- ``SMTPSink``: aiosmtpd's SMTP server on 127.0.0.1, recording each delivered message.

Both run in a thread of the test process and count what reached them, so a test can say
"zero calls arrived" and mean it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from shadowtap.devkafka import free_port


class HTTPSink:
    """Records ``METHOD path`` of every request it receives."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with sink._lock:
                    sink.calls.append(f"{self.command} {self.path}")
                to = parse_qs(urlsplit(self.path).query).get("to")
                body = b'{"ok": true}'
                self.send_response(302 if to else 200)
                if to:
                    self.send_header("Location", to[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def matching(self, text: str) -> list[str]:
        with self._lock:
            return [call for call in self.calls if text in call]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
