"""Django guard middleware, configured from ``settings.SHADOWTAP``; WSGI and ASGI alike.

    # settings.py
    MIDDLEWARE = ["shadowtap.guard.django.GuardDjangoMiddleware", ...]  # first
    SHADOWTAP = {"marking": {"key_env": "SHADOWTAP_MARKING_KEY"},
                 "guard": {"allow_hosts": ["search.staging:9200"]}}

``SHADOWTAP`` takes the same sections and keys as the TOML file; ``SHADOWTAP_*`` variables
still apply underneath it. Put it first, so every later middleware runs inside the mirrored
state. A streaming response's body is produced after the middleware returned, outside it: its
side effects are not blocked (wrap the WSGI/ASGI application with the matching middleware
instead when views stream). The rest is in shadowtap.guard.core.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.guard.core import Guard, Rejection
from shadowtap.guard.policy import GUARD_HEADER
from shadowtap.guard.state import Mirror, enter, leave
from shadowtap.guard.wsgi import environ_key
from shadowtap.marking import asgi_request_target, wsgi_request_target

_guard: Guard | None = None


def _shared_guard() -> Guard:
    """One Guard per process, built from settings.SHADOWTAP."""
    global _guard
    if _guard is None:
        from django.conf import settings as django_settings

        _guard = Guard(Settings.load(overrides=getattr(django_settings, "SHADOWTAP", {}) or {}))
    return _guard


class GuardDjangoMiddleware:
    """Runs verified mirrored requests with their side effects blocked."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.guard = _shared_guard()
        self._signature = environ_key(self.guard.signature_header)
        self._id = environ_key(self.guard.id_header)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        decision = self._admit(request)
        if decision is None:
            return self.get_response(request)
        if isinstance(decision, Rejection):
            return _forbidden(decision)
        token = enter(decision)
        try:
            response = self.get_response(request)
        finally:
            leave(token)
        response[GUARD_HEADER] = "mirrored"
        return response

    async def __acall__(self, request: Any) -> Any:
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        decision = self._admit(request)
        if decision is None:
            return await get_response(request)
        if isinstance(decision, Rejection):
            return _forbidden(decision)
        token = enter(decision)
        try:
            response = await get_response(request)
        finally:
            leave(token)
        response[GUARD_HEADER] = "mirrored"
        return response

    def _admit(self, request: Any) -> Mirror | Rejection | None:
        meta = request.META
        signature = meta.get(self._signature)
        record_id = meta.get(self._id)
        if signature is None and record_id is None:
            return None
        scope = getattr(request, "scope", None)  # under ASGI META's path is already decoded
        target = asgi_request_target(scope) if scope is not None else wsgi_request_target(meta)
        return self.guard.admit(request.method, target, signature, record_id)


def _forbidden(rejection: Rejection) -> Any:
    from django.http import HttpResponse

    response = HttpResponse(rejection.body, status=rejection.status)
    for name, value in rejection.headers:
        response[name] = value
    return response
