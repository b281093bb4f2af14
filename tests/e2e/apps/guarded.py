"""Staging apps with the guard installed, one per framework, served by real servers.

    GUARDED_APP=fastapi uvicorn tests.e2e.apps.guarded:fastapi_app
    GUARDED_APP=flask gunicorn tests.e2e.apps.guarded:flask_app
    GUARDED_APP=django gunicorn tests.e2e.apps.guarded:django_app      (WSGI)
    GUARDED_APP=django uvicorn tests.e2e.apps.guarded:django_asgi_app  (ASGI)
    GUARDED_APP=production uvicorn tests.e2e.apps.guarded:production_app

``GUARDED_CAPTURE=1`` puts capture in front of the guard (FastAPI and Django): a staging app
that is itself captured, configured from ``SHADOWTAP_*`` like any captured app. The
``production`` app is the shop the staging apps mirror: ``POST /checkout`` behind capture
only, answering ``{"order": "accepted"}`` without side effects of its own.

``POST /checkout`` (case in ``X-Test-Case``) does what a real checkout does to the outside
world: an e-mail to the customer through smtplib, a charge at the payment API through httpx
and through requests, a webhook through aiohttp, a receipt fetched through urllib, and a
charge from a thread the request starts (FastAPI: also httpx's async client and
``run_in_executor``; Django: also ``send_mail``). It answers JSON: ``mirrored`` (what
``is_mirrored()`` said) and, per effect, ``sent`` or ``blocked``. The payment API and the
mail server are the test's sinks (``SINK_HTTP``, ``SINK_SMTP_PORT``); the marking key is
``SHADOWTAP_MARKING_KEY``.
"""

# No ``from __future__ import annotations``: FastAPI must see the real ``Request`` class.
import asyncio
import os
import smtplib
import threading
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import aiohttp
import httpx
import requests

from shadowtap.guard import GuardMiddleware, GuardWSGIMiddleware, SideEffectBlocked, is_mirrored
from shadowtap.producers.asgi import ShadowtapMiddleware

SINK = os.environ.get("SINK_HTTP", "")
SMTP_PORT = int(os.environ.get("SINK_SMTP_PORT") or 0)


def _outcome(effect: Callable[[], object]) -> str:
    try:
        effect()
    except SideEffectBlocked:
        return "blocked"
    except Exception as exc:  # shown to the test, which then fails with the reason
        return f"error: {exc!r}"
    return "sent"


def _mail(case: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@x.test", "buyer@x.test", case
    message.set_content("Thank you for your order")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=5) as smtp:
        smtp.send_message(message)


async def _webhook(case: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{SINK}/hook/{case}/aiohttp", json={"order": 1}) as response,
    ):
        await response.read()


def _in_thread(effect: Callable[[], object]) -> str:
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(effect)))
    thread.start()
    thread.join()
    return outcome[0]


def checkout(case: str) -> dict[str, Any]:
    """The synchronous side effects of one checkout."""
    return {
        "mirrored": is_mirrored(),
        "smtp": _outcome(lambda: _mail(case)),
        "httpx": _outcome(lambda: httpx.post(f"{SINK}/pay/{case}/httpx", json={"amount": 1})),
        "requests": _outcome(lambda: requests.post(f"{SINK}/pay/{case}/requests", timeout=5)),
        "urllib": _outcome(lambda: urllib.request.urlopen(f"{SINK}/receipt/{case}/urllib")),
        "aiohttp": _outcome(lambda: asyncio.run(_webhook(case))),
        "thread": _in_thread(lambda: httpx.post(f"{SINK}/pay/{case}/thread")),
    }


def _fastapi() -> Any:
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/checkout")
    async def post_checkout(request: Request) -> dict[str, Any]:
        case = request.headers["x-test-case"]
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, checkout, case)  # threads: mirrored too
        result["mirrored"] = is_mirrored()
        async with httpx.AsyncClient() as client:
            result["httpx-async"] = await _async_outcome(
                client.post(f"{SINK}/pay/{case}/httpx-async")
            )
        result["aiohttp-async"] = await _async_outcome(_webhook(case + "-async"))
        return result

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ok": True}

    guarded = GuardMiddleware(app)
    if os.environ.get("GUARDED_CAPTURE"):
        return ShadowtapMiddleware(guarded)
    return guarded


def _production() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/checkout")
    async def post_checkout() -> dict[str, str]:
        return {"order": "accepted"}

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ok": True}

    return ShadowtapMiddleware(app)


async def _async_outcome(effect: Any) -> str:
    try:
        await effect
    except SideEffectBlocked:
        return "blocked"
    except Exception as exc:
        return f"error: {exc!r}"
    return "sent"


def _flask() -> Any:
    from flask import Flask, jsonify, request

    app = Flask(__name__)

    @app.post("/checkout")
    def post_checkout() -> Any:
        return jsonify(checkout(request.headers["X-Test-Case"]))

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    app.wsgi_app = GuardWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _django() -> tuple[Any, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.apps.guarded_django")
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application(), get_asgi_application()


def _django_urls() -> list[Any]:
    from django.core.mail import send_mail
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def post_checkout(request: HttpRequest) -> JsonResponse:
        case = request.headers["X-Test-Case"]
        result = checkout(case)
        result["django-mail"] = _outcome(
            lambda: send_mail(case, "Your order", "shop@x.test", ["buyer@x.test"])
        )
        return JsonResponse(result)

    def ready(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True})

    return [path("checkout", post_checkout), path("ready", ready)]


_which = os.environ.get("GUARDED_APP", "")
fastapi_app = _fastapi() if _which == "fastapi" else None
production_app = _production() if _which == "production" else None
flask_app = _flask() if _which == "flask" else None
django_app, django_asgi_app = _django() if _which == "django" else (None, None)
urlpatterns = _django_urls() if _which == "django" else []
