"""Django's WSGI application (``DJANGO_SETTINGS_MODULE`` set by the test)."""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
