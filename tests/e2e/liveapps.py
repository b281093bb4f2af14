"""Real framework apps behind shadowtap's middleware, served by real servers in e2e tests.

Each answers ``POST /echo`` with the body it read, ``GET /stream`` with a chunked stream and
``GET /boom`` by raising. Capture is configured from SHADOWTAP_* in the environment.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the real ``Request``
# class in the signature of a route defined inside a function.
import os
from collections.abc import Iterator

from shadowtap.producers.asgi import ShadowtapMiddleware
from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware


def _fastapi() -> object:
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(b"echo:" + await request.body(), media_type="application/octet-stream")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> object:
            for i in range(5):
                yield b"chunk-%d\n" % i

        return StreamingResponse(chunks(), media_type="text/plain")  # type: ignore[arg-type]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return ShadowtapMiddleware(app)


def _flask() -> object:
    from flask import Flask, Response, request

    app = Flask(__name__)

    @app.post("/echo")
    def echo() -> Response:
        return Response(b"echo:" + request.get_data(), mimetype="application/octet-stream")

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            for i in range(5):
                yield b"chunk-%d\n" % i

        return Response(chunks(), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    app.wsgi_app = ShadowtapWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _django() -> object:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="e2e",
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["shadowtap.producers.django.ShadowtapDjangoMiddleware"],
        SHADOWTAP={},
        DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _django_urls() -> list[object]:
    from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def echo(request: HttpRequest) -> HttpResponse:
        return HttpResponse(b"echo:" + request.body, content_type="application/octet-stream")

    def stream(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(
            (b"chunk-%d\n" % i for i in range(5)), content_type="text/plain"
        )

    def boom(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("boom")

    return [path("echo", echo), path("stream", stream), path("boom", boom)]


_which = os.environ.get("LIVEAPP", "")
fastapi_app = _fastapi() if _which == "fastapi" else None
flask_app = _flask() if _which == "flask" else None
django_app = _django() if _which == "django" else None
urlpatterns = _django_urls() if _which == "django" else []
