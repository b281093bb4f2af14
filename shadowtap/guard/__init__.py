"""Guard for the target app: trust only signed mirrored requests, and block their side effects.

One line, like capture::

    from shadowtap.guard import GuardMiddleware, GuardWSGIMiddleware

    app.add_middleware(GuardMiddleware)                    # FastAPI / Starlette / any ASGI
    app.wsgi_app = GuardWSGIMiddleware(app.wsgi_app)       # Flask / any WSGI
    MIDDLEWARE = ["shadowtap.guard.django.guard_middleware", ...]  # Django, first

During a request whose marking verifies (shadowtap.marking), outbound HTTP (httpx, requests,
urllib3, aiohttp, urllib, http.client) to hosts not on ``guard.allow_hosts``, SMTP, Django
e-mail and Celery publishing are blocked: raised as ``SideEffectBlocked`` or answered with a
canned response (shadowtap.guard.policy), counted (``guard.metrics``) and logged with the
record id. App code can ask ``is_mirrored()``. Settings (``[marking]``, ``[guard]``)::

    [marking]
    key_env = "SHADOWTAP_MARKING_KEY"   # the key the replayer signs with
    max_skew_s = 300

    [guard]
    allow_hosts = ["search.staging:9200", "*.svc.cluster.local"]
    on_block = "raise"                  # or "respond": respond_status, respond_body,
                                        #   respond_content_type
    on_untrusted = "reject"             # or "ordinary": a claim that fails verification

The guard imports only the standard library, shadowtap's settings and, when they are
installed, the libraries it patches.
"""

from __future__ import annotations

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.asgi import GuardMiddleware
from shadowtap.guard.core import Guard
from shadowtap.guard.state import is_mirrored, mirrored_request_id
from shadowtap.guard.wsgi import GuardWSGIMiddleware

__all__ = [
    "Guard",
    "GuardMiddleware",
    "GuardWSGIMiddleware",
    "SideEffectBlocked",
    "is_mirrored",
    "mirrored_request_id",
]
