"""Small real apps for the capture e2e tests, each served by a real server in a subprocess.

Every framework app answers the same routes, under ``/`` through shadowtap's middleware and
under ``/bare/`` without it (a dispatcher in front of the middleware for FastAPI and Flask;
``exclude_paths`` for Django, whose middleware list is global), so a test can compare what
the client gets with and without capture:

- ``POST /echo`` → 201, ``echo:`` + the body read, ``X-Seen-Query`` (the raw query string
  the app saw) and a ``Set-Cookie``;
- ``POST /upload`` → 200, JSON ``{"size": …, "sha256": …}`` of the whole body read;
- ``GET /stream`` → a chunked response of ``STREAM_CHUNKS``;
- ``GET /boom`` → the app raises ``RuntimeError``;
- ``GET /ready`` → 200 (readiness probe; excluded from capture).

Capture is configured from ``SHADOWTAP_*`` in the environment (and, for Django,
``settings.SHADOWTAP``).
"""

from __future__ import annotations

STREAM_CHUNKS = tuple(b"chunk-%d " % i + b"." * 100 + b"\n" for i in range(8))
