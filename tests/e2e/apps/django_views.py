"""Django views and URLconf (``ROOT_URLCONF``) for the Django e2e app, WSGI and ASGI.

The settings module is written by the test into a temporary directory; it lists
``ShadowtapDjangoMiddleware`` and excludes ``/bare/*`` from capture in ``SHADOWTAP``.
"""

from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from tests.e2e.apps import STREAM_CHUNKS


def echo(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(
        b"echo:" + request.body, status=201, content_type="application/octet-stream"
    )
    response["X-Seen-Query"] = request.META.get("QUERY_STRING", "")
    response.set_cookie("prod", "1")
    return response


def upload(request: HttpRequest) -> HttpResponse:
    body = request.body  # what most Django views do; capture copies only what was read
    payload = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return HttpResponse(json.dumps(payload), content_type="application/json")


def deny(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"no", status=401)  # an auth check: the body is never read


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter(STREAM_CHUNKS), content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def ready(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    route
    for prefix in ("", "bare/")
    for route in (
        path(f"{prefix}echo", echo),
        path(f"{prefix}upload", upload),
        path(f"{prefix}deny", deny),
        path(f"{prefix}stream", stream),
        path(f"{prefix}boom", boom),
        path(f"{prefix}ready", ready),
    )
]
