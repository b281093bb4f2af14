"""Django guard middleware, configured from ``settings.SHADOWTAP``; WSGI and ASGI alike.

    # settings.py
    MIDDLEWARE = ["shadowtap.guard.django.guard_middleware", ...]  # first
    SHADOWTAP = {"marking": {"key_env": "SHADOWTAP_MARKING_KEY"},
                 "guard": {"allow_hosts": ["search.staging:9200"]}}

``SHADOWTAP`` takes the same sections and keys as the TOML file; ``SHADOWTAP_*`` variables
still apply underneath it. Put it first, so every later middleware runs inside the mirrored
state. A streaming response's body is produced after the middleware returned, outside it: its
side effects are not blocked (wrap the WSGI/ASGI application with the matching middleware
instead when views stream). The rest is in shadowtap.guard.core.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.gateway import environ_target, scope_target
from shadowtap.guard.core import Guard, Rejection
from shadowtap.guard.policy import GUARD_HEADER
from shadowtap.guard.state import Mirror, enter, leave


@functools.cache
def _shared_guard() -> Guard:
    """One Guard per process, built from settings.SHADOWTAP."""
    return Guard(Settings.from_django())


def _admit(guard: Guard, request: Any) -> Mirror | Rejection | None:
    signature_key, id_key = guard.headers.environ
    signature = request.META.get(signature_key)
    record_id = request.META.get(id_key)
    if signature is None and record_id is None:
        return None
    scope = getattr(request, "scope", None)  # under ASGI, META's path is already decoded
    target = scope_target(scope) if scope is not None else environ_target(request.META)
    return guard.admit(request.method, target, signature, record_id)


def _forbidden(rejection: Rejection) -> Any:
    from django.http import HttpResponse

    response = HttpResponse(rejection.body, status=rejection.status)
    for name, value in rejection.headers:
        response[name] = value
    return response


def guard_middleware(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Runs verified mirrored requests with their side effects blocked (sync or async)."""
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction

    guard = _shared_guard()
    if iscoroutinefunction(get_response):
        get_response_async: Callable[[Any], Awaitable[Any]] = get_response

        async def middleware_async(request: Any) -> Any:
            decision = _admit(guard, request)
            if not isinstance(decision, Mirror):
                return (
                    await get_response_async(request) if decision is None else _forbidden(decision)
                )
            token = enter(decision)
            try:
                response = await get_response_async(request)
            finally:
                leave(token)
            response[GUARD_HEADER] = guard.mirrored[1]
            return response

        return markcoroutinefunction(middleware_async)

    def middleware(request: Any) -> Any:
        decision = _admit(guard, request)
        if not isinstance(decision, Mirror):
            if decision is None:
                return get_response(request)
            return _forbidden(decision)
        token = enter(decision)
        try:
            response = get_response(request)
        finally:
            leave(token)
        response[GUARD_HEADER] = guard.mirrored[1]
        return response

    return middleware


guard_middleware.sync_capable = True  # type: ignore[attr-defined]
guard_middleware.async_capable = True  # type: ignore[attr-defined]
