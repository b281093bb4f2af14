"""Django settings of the guarded e2e app (``DJANGO_SETTINGS_MODULE``; see guarded.py)."""

from __future__ import annotations

import os

SECRET_KEY = "e2e-not-secret"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.e2e.apps.guarded"
MIDDLEWARE = ["shadowtap.guard.django.guard_middleware"]
if os.environ.get("GUARDED_CAPTURE"):  # a staging app that is itself captured, outside the guard
    MIDDLEWARE.insert(0, "shadowtap.producers.django.ShadowtapDjangoMiddleware")
SHADOWTAP = {"guard": {"on_untrusted": "reject"}}  # the marking key comes from the environment
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("SINK_SMTP_PORT") or 0)
