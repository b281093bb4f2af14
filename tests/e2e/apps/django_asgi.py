"""Django's ASGI application (``DJANGO_SETTINGS_MODULE`` set by the test)."""

from __future__ import annotations

from django.core.asgi import get_asgi_application

application = get_asgi_application()
