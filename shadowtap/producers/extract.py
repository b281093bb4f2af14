"""What the adapters read from an ASGI scope or a WSGI environ, shared by all of them.

Django runs under either, so its middleware reads the same scope or environ the ASGI and WSGI
middleware do: each fact is read one way, here.
"""

from __future__ import annotations

import urllib.parse

from shadowtap.headers import Headers
from shadowtap.types import Environ, Scope

# RFC 3986 path characters that need no escaping, and '%' so existing escapes stay as they are.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def parse_length(value: str | bytes | None) -> int | None:
    """A Content-Length value as a number, or None when absent or not a number."""
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def scope_path(scope: Scope) -> str:
    """The path as the client sent it: ``raw_path`` when the server gives it, else re-quoted."""
    raw: bytes | None = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return urllib.parse.quote(scope.get("root_path", "") + scope["path"], safe=PATH_SAFE)


def scope_server(scope: Scope) -> str:
    """``host:port`` the server listens on, for a request without a Host header."""
    server = scope.get("server")
    if not server:
        return ""
    host, port = server
    return f"{host}:{port}" if port else str(host)


def environ_path(environ: Environ) -> str:
    """The path as the client sent it: RAW_URI (gunicorn) or REQUEST_URI (werkzeug, uWSGI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PATH_INFO is decoded as latin-1 by the server: re-encode to the wire form.
    return urllib.parse.quote(path.encode("latin-1"), safe=PATH_SAFE)


def environ_headers(environ: Environ) -> Headers:
    """The request headers of a WSGI environ (``HTTP_*``, Content-Type and -Length)."""
    headers: Headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), value))
    return headers


def environ_server(environ: Environ) -> str:
    """``host:port`` from SERVER_NAME and SERVER_PORT, for a request without a Host header."""
    name, port = environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", "")
    return f"{name}:{port}" if port else name
