"""Django's e-mail: ``django.core.mail.get_connection`` hands a mirrored request a blocking
backend, whatever ``EMAIL_BACKEND`` is.

``send_mail``, ``send_mass_mail``, ``mail_admins``, ``EmailMessage.send`` and the admin error
e-mails all get their backend there. That covers backends that send later (a queue in the
database) or through an API, not only SMTP; a backend the app built itself before the request
still meets the smtplib and HTTP patches. Blocking ignores ``allow_hosts``: no e-mail leaves
a mirrored request through Django. Raise mode: ``SMTPBlocked``, unless ``fail_silently``
(then 0 messages sent, as Django's SMTP backend reports a failure); respond mode: every message
reported sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import django.core.mail
from django.core.mail.backends.base import BaseEmailBackend

from shadowtap.guard.patches import patch
from shadowtap.guard.patches.smtp import SMTPBlocked
from shadowtap.guard.state import Mirror, current

GetConnection = Callable[..., Any]


class BlockingBackend(BaseEmailBackend):  # type: ignore[misc]
    """Counts, logs and drops what a mirrored request sends; never opens a connection."""

    def __init__(self, mirror: Mirror, backend: str, fail_silently: bool = False) -> None:
        super().__init__(fail_silently=fail_silently)
        self.mirror = mirror
        self.backend = backend

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        messages = list(email_messages)
        if not messages:
            return 0
        recipients = sum(len(m.recipients()) for m in messages)  # counted, never logged
        target = f"{len(messages)} message(s) to {recipients} recipient(s) via {self.backend}"
        block = self.mirror.block("email", target)
        if block.respond:
            return len(messages)
        if self.fail_silently:
            return 0
        raise SMTPBlocked(block)


def wrap_get_connection(get_connection: GetConnection) -> GetConnection:
    @functools.wraps(get_connection)
    def get_connection_checked(
        backend: str | None = None, fail_silently: bool = False, **kwargs: Any
    ) -> Any:
        mirror = current()
        if mirror is not None:
            from django.conf import settings

            name = backend or getattr(settings, "EMAIL_BACKEND", "") or "the default backend"
            return BlockingBackend(mirror, name, fail_silently)
        return get_connection(backend, fail_silently, **kwargs)

    return get_connection_checked


def install() -> None:
    patch(django.core.mail, "get_connection", wrap_get_connection)
