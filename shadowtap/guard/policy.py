"""What the guard does with an outbound side effect of a verified mirrored request.

A destination on ``guard.allow_hosts`` passes. Anything else is blocked, counted and logged
with the record id, then, per ``guard.on_block``:

- ``raise`` (default) — a ``SideEffectBlocked`` that is also the library's own connection
  error (``httpx.ConnectError``, ``requests.ConnectionError``, ``aiohttp.ClientConnectionError``,
  ``urllib.error.URLError``, ``smtplib.SMTPException``, kombu's ``OperationalError``), so the
  app's existing error handling sees an unreachable service;
- ``respond`` — a canned answer: HTTP ``respond_status`` with ``respond_body`` of
  ``respond_content_type`` and ``X-Shadowtap-Guard: blocked``; SMTP accepts and delivers
  nothing; Django's e-mail reports the messages sent; Celery returns a finished result.

``allow_hosts`` entries are host names or addresses, with ``*`` globs and an optional port:
``search.staging``, ``*.svc.cluster.local``, ``127.0.0.1:9200``, ``[::1]:8080``.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shadowtap.config import GuardSettings
from shadowtap.errors import ConfigError
from shadowtap.guard.metrics import GuardMetrics

log = logging.getLogger("shadowtap.guard")

GUARD_HEADER = "X-Shadowtap-Guard"
T = TypeVar("T")
_Match = Callable[[str], "re.Match[str] | None"]


@dataclass(frozen=True, slots=True)
class Block:
    """One blocked side effect and how to answer it."""

    effect: str  # http, smtp, email, celery
    target: str  # what was attempted, without query strings or addresses of people
    request_id: str
    respond: bool
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reason: str = "not on guard.allow_hosts"

    @property
    def message(self) -> str:
        return (
            f"shadowtap guard blocked {self.effect} side effect {self.target} during mirrored "
            f"request {self.request_id} ({self.reason})"
        )

    def resolve(self, respond: Callable[[Block], T], error: Callable[[Block], BaseException]) -> T:
        """The canned answer ``respond`` builds, or raise the exception ``error`` builds."""
        if self.respond:
            return respond(self)
        raise error(self)


class Policy:
    """Allowlist and answer mode, compiled once from ``[guard]``."""

    __slots__ = ("_allowed", "body", "headers", "metrics", "respond", "status")

    def __init__(self, settings: GuardSettings, metrics: GuardMetrics) -> None:
        if not 100 <= settings.respond_status <= 599:
            raise ConfigError(
                f"guard.respond_status = {settings.respond_status} is not an HTTP status"
            )
        self._allowed = compile_hosts(settings.allow_hosts)
        self.respond = settings.on_block == "respond"
        self.status = settings.respond_status
        self.body = settings.respond_body.encode()
        self.headers = (
            ("Content-Type", settings.respond_content_type),
            ("Content-Length", str(len(self.body))),
            (GUARD_HEADER, "blocked"),
        )
        self.metrics = metrics

    def allows(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return any(
            match(host) is not None and (allowed_port is None or allowed_port == port)
            for match, allowed_port in self._allowed
        )

    def block(
        self,
        effect: str,
        target: str,
        request_id: str,
        *,
        can_respond: bool = True,
        reason: str = "not on guard.allow_hosts",
    ) -> Block:
        respond = self.respond and can_respond
        self.metrics.count_blocked(effect, "respond" if respond else "raise")
        log.info(
            "blocked %s %s during mirrored request %s (%s)",
            effect,
            target,
            request_id,
            "canned answer" if respond else "raised",
        )
        return Block(
            effect, target, request_id, respond, self.status, self.body, self.headers, reason
        )


def compile_hosts(patterns: tuple[str, ...]) -> tuple[tuple[_Match, int | None], ...]:
    """Each allowlist entry as a host matcher and a port (None: any port)."""
    compiled = []
    for pattern in patterns:
        host, port = _split_host_port(pattern.strip().lower())
        if not host:
            raise ConfigError(f"guard.allow_hosts entry {pattern!r} has no host")
        compiled.append((re.compile(fnmatch.translate(host)).match, port))
    return tuple(compiled)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a name, or an IPv6 address without brackets and so without a port
        return entry, None
    if not port:
        return host, None
    if not port.isdigit():
        raise ConfigError(f"guard.allow_hosts entry {entry!r}: port {port!r} is not a number")
    return host, int(port)
