"""What an ASGI scope or a WSGI environ says about a request, read one way for every reader.

Capture's adapters (shadowtap.producers) and the target's guard (shadowtap.guard) both read
the request line and headers a server hands over, and must agree: capture drops a request
whose marking verifies, the guard trusts the same marking, and both verify it over the
request target as the client sent it (``scope_target``, ``environ_target``). Django runs
under either interface, so its middleware reads the same scope or environ. Standard library
only: production apps import it.
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


def environ_key(header: str) -> str:
    """The WSGI environ key of a request header (``X-Shadowtap-Id`` → ``HTTP_X_SHADOWTAP_ID``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def scope_path(scope: Scope) -> str:
    """The path as the client sent it: ``raw_path`` when the server gives it, else re-quoted."""
    raw: bytes | None = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return urllib.parse.quote(scope.get("root_path", "") + scope["path"], safe=PATH_SAFE)


def scope_target(scope: Scope) -> bytes:
    """Path and query as the client sent them: what a mirrored request's signature covers."""
    path = scope_path(scope).encode("latin-1")
    query: bytes = scope.get("query_string") or b""
    return path + b"?" + query if query else path


def scope_server(scope: Scope) -> str:
    """``host:port`` the server listens on, for a request without a Host header."""
    server = scope.get("server")
    if not server:
        return ""
    host, port = server
    return f"{host}:{port}" if port else str(host)


def environ_path(environ: Environ) -> str:
    """The path as the client sent it: RAW_URI (gunicorn) or REQUEST_URI (werkzeug, uWSGI)."""
    return _environ_target(environ).split("?", 1)[0]


def environ_target(environ: Environ) -> bytes:
    """Path and query as the client sent them: what a mirrored request's signature covers."""
    return _environ_target(environ).encode("latin-1")


def _environ_target(environ: Environ) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PATH_INFO is decoded as latin-1 by the server: re-encode to the wire form.
    path = urllib.parse.quote(path.encode("latin-1"), safe=PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


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
