"""The guard's decision for one request, shared by the ASGI, WSGI and Django middleware.

A request *claims* to be mirrored when it carries the signature or the id header
(``[marking]``). Unmarked requests never get here: each adapter looks for those two headers
and otherwise calls the app at once. A claim is verified (shadowtap.marking); then:

- valid: the request runs as mirrored (``state.Mirror`` in the context variable), its
  response carries ``X-Shadowtap-Guard: mirrored`` (so a signed probe can see the guard;
  ``mirrored; idempotency-key=honoured`` with ``guard.honours_idempotency_key``, the app's
  word that a repeated ``Idempotency-Key`` gets the first answer, for ``shadowtap doctor``);
- not valid, ``guard.on_untrusted = "reject"`` (default): 403 with a body that says why, and
  the app never sees it — a mirrored request whose marking broke must not fire its side
  effects;
- not valid, ``"ordinary"``: the request runs as ordinary traffic.

Either way the verdict is counted and an untrusted claim is logged. Building a Guard installs
the outbound patches (once per process, shadowtap.guard.patches) and warns when the marking
key is the development key, with which anyone can sign.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from shadowtap.config import Settings
from shadowtap.guard import patches
from shadowtap.guard.metrics import GuardMetrics
from shadowtap.guard.policy import GUARD_HEADER, Policy
from shadowtap.guard.state import Mirror
from shadowtap.marking import Check, Marker, MarkingHeaders

log = logging.getLogger("shadowtap.guard")
AppT = TypeVar("AppT")


@dataclass(frozen=True, slots=True)
class Rejection:
    """The 403 answer to a claim that failed verification."""

    verdict: str
    body: bytes
    status: int = 403

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(self.body))),
            (GUARD_HEADER, f"rejected; verdict={self.verdict}"),
        ]

    @classmethod
    def of(cls, check: Check) -> Rejection:
        text = (
            "shadowtap guard: this request claims to be mirrored, but its marking is "
            f"{check.verdict} ({check.detail}). A mirrored request must carry a valid, current "
            "signature; ordinary requests must not carry shadowtap's marking headers.\n"
        )
        return cls(str(check.verdict), text.encode())


class Guard:
    """Verification, policy and counters for one app; built once, used by every request."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        metrics: GuardMetrics | None = None,
    ) -> None:
        settings = settings or Settings.load(env=environ)
        self.metrics = metrics or GuardMetrics()
        self.marker = Marker.from_settings(settings.marking, environ)
        self.policy = Policy(settings.guard, self.metrics)
        self.reject = settings.guard.on_untrusted == "reject"
        self.headers = MarkingHeaders.of(settings.marking)
        honours = "; idempotency-key=honoured" if settings.guard.honours_idempotency_key else ""
        self.mirrored = (GUARD_HEADER, "mirrored" + honours)  # on a mirrored request's response
        self.patches = patches.install()
        if self.marker.is_development:
            log.warning(
                "shadowtap guard verifies with the development marking key: anyone can mark a "
                "request as mirrored. Set marking.key_env (or marking.key) to the key the "
                "replayer uses."
            )

    def admit(
        self, method: str, target: str | bytes, signature: str | None, record_id: str | None
    ) -> Mirror | Rejection | None:
        """For a request that claims to be mirrored: run it mirrored, reject it, or neither."""
        check = self.marker.verify(method, target, signature, record_id)
        if check.valid:
            self.metrics.count_marked(check.verdict, "mirrored")
            return Mirror(check.record_id, self.policy)
        outcome = "rejected" if self.reject else "ordinary"
        self.metrics.count_marked(check.verdict, outcome)
        log.warning(
            "a %s request claims to be mirrored (id %r), but its marking is %s (%s): %s",
            method,
            record_id,
            check.verdict,
            check.detail,
            "rejected with 403" if self.reject else "served as ordinary traffic",
        )
        return Rejection.of(check) if self.reject else None


class GuardedApp(Generic[AppT]):
    """What each framework adapter holds: the app it wraps, and the guard for it."""

    def __init__(
        self, app: AppT, settings: Settings | None = None, *, guard: Guard | None = None
    ) -> None:
        self.app = app
        self.guard = guard or Guard(settings)
