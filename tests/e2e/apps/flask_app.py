"""Flask under gunicorn (sync worker): ``gunicorn tests.e2e.apps.flask_app:app``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from flask import Flask, Response, jsonify, request

from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware
from shadowtap.types import Environ, StartResponse
from tests.e2e.apps import STREAM_CHUNKS

app = Flask(__name__)


def echo() -> Response:
    response = Response(
        b"echo:" + request.get_data(),
        status=201,
        mimetype="application/octet-stream",
        headers={"X-Seen-Query": request.environ["QUERY_STRING"]},
    )
    response.set_cookie("prod", "1")
    return response


def upload() -> Response:
    digest, size = hashlib.sha256(), 0
    while chunk := request.stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(size=size, sha256=digest.hexdigest())


def deny() -> Response:
    return Response(b"no", status=401)  # an auth check: the body is never read


def stream() -> Response:
    def chunks() -> Iterator[bytes]:
        yield from STREAM_CHUNKS

    return Response(chunks(), mimetype="text/plain")


def boom() -> Response:
    raise RuntimeError("boom")


def ready() -> Response:
    return Response(b"ok", mimetype="text/plain")


for prefix in ("", "/bare"):
    app.add_url_rule(f"{prefix}/echo", f"{prefix}echo", echo, methods=["POST"])
    app.add_url_rule(f"{prefix}/upload", f"{prefix}upload", upload, methods=["POST"])
    app.add_url_rule(f"{prefix}/deny", f"{prefix}deny", deny, methods=["POST"])
    app.add_url_rule(f"{prefix}/stream", f"{prefix}stream", stream)
    app.add_url_rule(f"{prefix}/boom", f"{prefix}boom", boom)
    app.add_url_rule(f"{prefix}/ready", f"{prefix}ready", ready)

_bare = app.wsgi_app
_captured = ShadowtapWSGIMiddleware(_bare)


def _dispatch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/bare/*`` skips the middleware entirely: the baseline for "unchanged"."""
    if environ.get("PATH_INFO", "").startswith("/bare/"):
        return _bare(environ, start_response)
    return _captured(environ, start_response)


app.wsgi_app = _dispatch  # type: ignore[method-assign]
