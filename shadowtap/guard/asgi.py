"""ASGI guard middleware for the target app: FastAPI, Starlette, Django ASGI, any ASGI 3 app.

    from shadowtap.guard import GuardMiddleware

    app = GuardMiddleware(app)          # settings from SHADOWTAP_* / SHADOWTAP_CONFIG
    app.add_middleware(GuardMiddleware)  # FastAPI / Starlette: add it last, so it runs first

A request without shadowtap's marking headers goes straight to the app. What happens to one
that has them is in shadowtap.guard.core; settings are ``[marking]`` and ``[guard]``.
"""

from __future__ import annotations

from shadowtap.gateway import scope_target
from shadowtap.guard.core import GuardedApp, Rejection
from shadowtap.guard.state import enter, leave
from shadowtap.types import ASGIApp, Message, Receive, Scope, Send


class GuardMiddleware(GuardedApp[ASGIApp]):
    """Runs verified mirrored requests with their side effects blocked."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        signature_name, id_name = self.guard.headers.asgi
        signature = record_id = None
        for name, value in scope["headers"]:
            if name == signature_name:
                signature = value
            elif name == id_name:
                record_id = value
        if signature is None and record_id is None:
            return await self.app(scope, receive, send)
        decision = self.guard.admit(
            scope["method"], scope_target(scope), _text(signature), _text(record_id)
        )
        if decision is None:
            return await self.app(scope, receive, send)
        if isinstance(decision, Rejection):
            return await _reject(decision, send)

        name, value = self.guard.mirrored
        mirrored = (name.lower().encode(), value.encode())

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), mirrored]
            await send(message)

        token = enter(decision)
        try:
            await self.app(scope, receive, send_marked)
        finally:
            leave(token)


async def _reject(rejection: Rejection, send: Send) -> None:
    headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in rejection.headers]
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": rejection.body})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
