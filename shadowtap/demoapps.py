"""The demo's "shop": a small JSON API served as production (v1) and as staging (v2).

Plain ASGI, no framework, so the demo needs nothing beyond uvicorn. v2 differs from v1 on
purpose (a discount rule and a renamed field), so a replay has real differences to find::

    python -m shadowtap.demoapps production --port 8001   # v1 behind the capture middleware
    python -m shadowtap.demoapps staging --port 8002      # v2 behind the guard

Routes: ``GET /health``, ``GET /metrics``, ``GET /api/products?page=N``,
``POST /api/orders`` (JSON), ``GET /api/orders/{id}``, ``POST /api/login`` (form).

An accepted order is confirmed by e-mail through smtplib when ``SHOP_SMTP`` names a mail
server (``host:port``; failures are ignored, as Django's ``fail_silently`` does). Staging runs
behind shadowtap's guard, which blocks that e-mail for mirrored orders; its counters are on
``GET /guard/metrics``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import smtplib
import urllib.parse
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import orjson

from shadowtap.types import ASGIApp, Receive, Scope, Send

PRODUCTS: list[dict[str, Any]] = [
    {"sku": f"SKU-{i:04d}", "name": f"Product {i}", "price_cents": 199 + 37 * i} for i in range(60)
]


def shop_app(version: str) -> ASGIApp:
    """The shop API; ``version`` "v2" applies a 10 % discount over 50.00 and renames a field."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, payload = _route(
            version, scope["method"], scope["path"], scope["query_string"], body
        )
        data = orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"x-shop-version", version.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def _route(version: str, method: str, path: str, query: bytes, body: bytes) -> tuple[int, Any]:
    if path in ("/health", "/metrics"):
        return 200, {"status": "ok"}
    if path == "/api/products" and method == "GET":
        params = urllib.parse.parse_qs(query.decode("latin-1"))
        page = int(params.get("page", ["1"])[0] or 1)
        return 200, {"page": page, "items": PRODUCTS[(page - 1) * 10 : page * 10]}
    if path == "/api/orders" and method == "POST":
        try:
            order = orjson.loads(body)
            items = order["items"]
            total: int = sum(
                PRODUCTS[int(i["product"]) % len(PRODUCTS)]["price_cents"] * int(i["qty"])
                for i in items
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 400, {"error": "invalid order"}
        if version == "v2" and total > 5000:
            total = total * 9 // 10
        order_id = hashlib.sha256(body).hexdigest()[:12]
        _confirm(order_id)
        key = "total_cents" if version == "v1" else "amount_cents"
        return 201, {"order_id": order_id, key: total, "status": "accepted"}
    if path.startswith("/api/orders/") and method == "GET":
        return 200, {"order_id": path.rsplit("/", 1)[1], "status": "shipped"}
    if path == "/api/login" and method == "POST":
        form = urllib.parse.parse_qs(body.decode("latin-1"))
        if not form.get("password"):
            return 400, {"error": "password required"}
        return 200, {
            "user": form.get("username", ["?"])[0],
            "token": hashlib.sha256(body).hexdigest(),
        }
    return 404, {"error": "not found"}


def _confirm(order_id: str) -> None:
    """The order confirmation e-mail, when a mail server is configured (``SHOP_SMTP``)."""
    server = os.environ.get("SHOP_SMTP", "")
    if not server:
        return
    message = EmailMessage()
    message["From"], message["To"] = "shop@example.com", "customer@example.com"
    message["Subject"] = f"Order {order_id} accepted"
    message.set_content("Thank you for your order.")
    try:
        with smtplib.SMTP(server, timeout=2) as smtp:
            smtp.send_message(message)
    except OSError:  # blocked by the guard, or no mail server: the order stands
        pass


def _with_guard_metrics(app: ASGIApp, render: Callable[[], str]) -> ASGIApp:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/guard/metrics":
            return await app(scope, receive, send)
        text = render().encode()
        headers = [(b"content-type", b"text/plain; version=0.0.4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": text})

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shadowtap.demoapps")
    parser.add_argument("role", choices=["production", "staging"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    from shadowtap.config import Settings

    app = shop_app("v1" if args.role == "production" else "v2")
    if args.role == "production":
        from shadowtap.producers.asgi import ShadowtapMiddleware

        app = ShadowtapMiddleware(app, settings=Settings.load())
    else:
        from shadowtap.guard import GuardMiddleware

        guarded = GuardMiddleware(app, Settings.load())
        app = _with_guard_metrics(guarded, guarded.guard.metrics.render)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
