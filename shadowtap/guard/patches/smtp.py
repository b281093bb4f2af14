"""smtplib (``SMTP``, ``SMTP_SSL``, ``LMTP`` over TCP): checked when a session connects.

Raise mode: ``SMTPBlocked``, an ``smtplib.SMTPException`` and so an ``OSError``, what an
unreachable mail server gives (Django's SMTP backend with ``fail_silently`` swallows it).
Respond mode: the session becomes a null session for the rest of its life: every command
succeeds, ``sendmail``/``send_message`` report every recipient accepted, and nothing is sent.
"""

from __future__ import annotations

import functools
import smtplib
from collections.abc import Callable, Sequence
from typing import Any

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.state import current

Connect = Callable[..., tuple[int, bytes]]
_NULL_REPLY = b"shadowtap guard: accepted, not sent"
_NULL_CODES = {"quit": 221, "data": 354}  # every other command: 250


class SMTPBlocked(SideEffectBlocked, smtplib.SMTPException):
    """Raised instead of connecting: an ``smtplib.SMTPException``."""


class _NullSession(smtplib.SMTP):
    """Mixed in front of the app's SMTP class: a server that accepts all and delivers none."""

    _null_verb = ""

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        return 220, _NULL_REPLY

    def putcmd(self, cmd: str, args: str = "") -> None:
        self._null_verb = cmd.lower()

    def send(self, s: Any) -> None:
        self._null_verb = ""  # a message body after DATA

    def getreply(self) -> tuple[int, bytes]:
        return _NULL_CODES.get(self._null_verb, 250), _NULL_REPLY

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        return 220, _NULL_REPLY

    def login(self, user: str, password: str, *, initial_response_ok: bool = True) -> Any:
        return 235, _NULL_REPLY

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: Any,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        return {}


_null_classes: dict[type, type] = {}


def _go_null(session: smtplib.SMTP) -> tuple[int, bytes]:
    cls = type(session)
    null = _null_classes.get(cls)
    if null is None:
        null = _null_classes[cls] = type(f"Null{cls.__name__}", (_NullSession, cls), {})
    session.__class__ = null
    return 220, _NULL_REPLY


def destination(session: smtplib.SMTP, host: str, port: int) -> tuple[str, int]:
    """Host and port as ``SMTP.connect`` reads them (``"host:port"`` in ``host`` too)."""
    if not port and host.count(":") == 1:
        host, _, text = host.partition(":")
        port = int(text) if text.isdigit() else 0
    return host, port or session.default_port


def wrap_connect(connect: Connect) -> Connect:
    @functools.wraps(connect)
    def connect_checked(
        self: smtplib.SMTP, host: str = "localhost", port: int = 0, source_address: Any = None
    ) -> tuple[int, bytes]:
        mirror = current()
        if mirror is not None:
            host_only, port_only = destination(self, host, port)
            block = mirror.check("smtp", host_only, port_only, f"smtp://{host_only}:{port_only}")
            if block is not None:
                return block.resolve(lambda _: _go_null(self), SMTPBlocked)
        return connect(self, host, port, source_address)

    return connect_checked


def install() -> None:
    patch(smtplib.SMTP, "connect", wrap_connect)
