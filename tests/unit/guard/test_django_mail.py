"""Django's e-mail during mirrored requests: every backend is replaced, fail_silently is kept.

Django's settings are process-wide, so this runs in its own interpreter (locmem backend:
``mail.outbox`` shows what would have been sent).
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import django
from django.conf import settings

settings.configure(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
django.setup()
from django.core import mail
from shadowtap.guard import SideEffectBlocked
from tests.unit.guard.conftest import make_guard, mirrored

def send(**kwargs):
    return mail.send_mail("order", "thanks", "shop@x.test", ["a@x.test", "b@x.test"], **kwargs)

assert send() == 1 and len(mail.outbox) == 1
guard = make_guard()
with mirrored(guard):
    try:
        send()
        raise AssertionError("not blocked")
    except SideEffectBlocked as exc:
        assert isinstance(exc, OSError), type(exc).__mro__
        assert "1 message(s) to 2 recipient(s)" in str(exc), exc
        assert "a@x.test" not in str(exc)
    assert send(fail_silently=True) == 0
    try:
        mail.send_mass_mail([("s", "m", "f@x.test", ["c@x.test"])] * 2)
        raise AssertionError("not blocked")
    except SideEffectBlocked as exc:
        assert "2 message(s) to 2 recipient(s)" in str(exc), exc
        assert "email is blocked whatever its destination" in str(exc), exc
canned = make_guard(on_block="respond")
with mirrored(canned):
    assert send() == 1
    msg = mail.EmailMessage("receipt", "body", "shop@x.test", ["c@x.test"])
    assert msg.send() == 1
assert len(mail.outbox) == 1, mail.outbox
assert guard.metrics.blocked("email", "raise") == 3
assert canned.metrics.blocked("email", "respond") == 2
print("ok")
"""


def test_django_mail_is_blocked_whatever_the_backend() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
