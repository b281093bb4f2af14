"""Outbound patches, one module per patched library, installed once per process.

Each module imports its library at the top and is imported only when that library is
installed, so the guard pulls in nothing the app does not already have. Each one wraps the
narrowest call every request of that library passes through, once per hop (redirects are
checked again), and exposes ``install()``:

========================  =====================================================  ========
library                   patched                                                respond
========================  =====================================================  ========
threading, futures        ``Thread.start``, ``ThreadPoolExecutor.submit``        —
httpx                     ``HTTPTransport.handle_request`` (+ async)             yes
requests                  ``HTTPAdapter.send``                                   yes
urllib3                   ``HTTPConnectionPool.urlopen``                         yes
aiohttp                   ``ClientSession._request``; ``BaseConnector.connect``  yes / no
                          for each redirect ``_request`` follows by itself
urllib / http.client      ``AbstractHTTPHandler.do_open``; ``HTTPConnection``    yes / no
                          ``.connect`` for any other user of http.client
smtplib                   ``SMTP.connect``                                       yes
Django e-mail             ``django.core.mail.get_connection`` (every backend)   yes
Celery                    ``Celery.send_task`` (``delay``, ``apply_async``)      yes
========================  =====================================================  ========

Outside a mirrored request a wrapper costs one context-variable read (bench/guard.py).
A patch that fails to install is logged as an error and reported by ``install()``: that
library's side effects are then *not* blocked.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("shadowtap.guard")

# name: (module that must be importable, our patch module)
PATCHES: dict[str, tuple[str, str]] = {
    "threads": ("concurrent.futures", "threads"),
    "httpx": ("httpx", "http_httpx"),
    "urllib3": ("urllib3", "http_urllib3"),
    "requests": ("requests", "http_requests"),
    "aiohttp": ("aiohttp", "http_aiohttp"),
    "urllib": ("urllib.request", "http_stdlib"),
    "smtplib": ("smtplib", "smtp"),
    "django-mail": ("django", "django_mail"),
    "celery": ("celery", "celery_tasks"),
}

_lock = threading.Lock()
_status: dict[str, str] = {}


def install() -> Mapping[str, str]:
    """Install every patch whose library is present; idempotent. Returns name → status.

    Status is ``installed``, ``absent`` (the library is not installed) or ``failed: …``.
    """
    with _lock:
        if not _status:
            for name, (library, module) in PATCHES.items():
                _status[name] = _install_one(library, module)
        return dict(_status)


def _install_one(library: str, module: str) -> str:
    try:
        if importlib.util.find_spec(library) is None:
            return "absent"
    except (ImportError, ValueError):
        return "absent"
    try:
        importlib.import_module(f"{__name__}.{module}").install()
    except Exception as exc:  # a broken library must not break the app; it is reported
        log.error(
            "shadowtap guard could not patch %s, so its side effects are NOT blocked: %r",
            library,
            exc,
        )
        return f"failed: {exc!r}"
    return "installed"


def patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``wrap(owner.name)``, unless it is already ours."""
    original = getattr(owner, name)
    if getattr(original, "__shadowtap_guard__", False):
        return
    wrapper = wrap(original)
    wrapper.__shadowtap_guard__ = True
    setattr(owner, name, wrapper)
