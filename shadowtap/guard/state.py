"""Whether the code running now serves a verified mirrored request: one context variable.

The middleware sets it for the request; asyncio tasks inherit it, and so do threads the
request starts (``threading.Thread``, ``ThreadPoolExecutor``, ``loop.run_in_executor``,
``asyncio.to_thread``: see shadowtap.guard.patches.threads). App code asks::

    from shadowtap.guard import is_mirrored

    if not is_mirrored():
        capture_payment(order)
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from shadowtap.guard.policy import Block, Policy


@dataclass(frozen=True, slots=True)
class Mirror:
    """The verified mirrored request being served, and the policy for its side effects."""

    request_id: str
    policy: Policy

    def check(
        self, effect: str, host: str, port: int | None, target: str, *, respond: bool = True
    ) -> Block | None:
        """None when ``host:port`` is allowed; else the block (counted and logged).

        ``respond`` False: the caller has no answer to can, so it raises in any mode.
        """
        if self.policy.allows(host, port):
            return None
        return self.policy.block(effect, target, self.request_id, can_respond=respond)

    def block(self, effect: str, target: str) -> Block:
        """Block an effect that has no destination to allow (Django e-mail, Celery tasks)."""
        reason = f"{effect} is blocked whatever its destination"
        return self.policy.block(effect, target, self.request_id, reason=reason)

    def check_http(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        path: str,
        *,
        respond: bool = True,
    ) -> Block | None:
        """``check`` for an HTTP request; the logged target leaves out the query string."""
        port = port or _DEFAULT_PORTS.get(scheme)
        shown = f"[{host}]" if ":" in host else host
        target = f"{method.upper()} {scheme}://{shown}:{port}{path}"
        return self.check("http", host, port, target, respond=respond)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_mirror: ContextVar[Mirror | None] = ContextVar("shadowtap_guard_mirror", default=None)
# The patches call this on every outbound call: a bound C method, no Python frame.
current = _mirror.get
_seen = False


def seen_mirrored() -> bool:
    """Whether any request of this process was mirrored (until then nothing can be)."""
    return _seen


def is_mirrored() -> bool:
    """Whether this code serves a verified mirrored request (its side effects are blocked)."""
    return _mirror.get() is not None


def mirrored_request_id() -> str | None:
    """The record id of the mirrored request being served, or None."""
    mirror = _mirror.get()
    return None if mirror is None else mirror.request_id


def enter(mirror: Mirror | None) -> Token[Mirror | None]:
    global _seen
    if mirror is not None:
        _seen = True
    return _mirror.set(mirror)


def leave(token: Token[Mirror | None]) -> None:
    _mirror.reset(token)
