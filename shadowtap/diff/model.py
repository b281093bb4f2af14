"""What the diff compares: one request, and each side's answer to it.

The pipeline maps its own records into these: the envelope's recorded production response
and every result on ``shadowtap.results`` become a :class:`Side`, the record's id, capture
time, method and path a :class:`Request`. Nothing here knows Kafka or the wire format, so
every comparison is a pure function that unit tests call directly.

A side that cannot be compared as a whole says why (:class:`Incomplete`); a body cut at a
size limit is not incomplete: it is compared up to what both sides kept and marked partial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

HeaderPairs = Sequence[tuple[str, str]]


class Incomplete(StrEnum):
    """Why a request or a response is counted apart instead of diffed as if whole."""

    TRUNCATED = "truncated"  # capture cut the request body: the target saw another request
    BODY_UNREAD = "body-unread"  # the body was never read, so nothing says what it held
    DELIVERY_ERROR = "delivery-error"  # no response at all (connect, timeout, blocked, ...)


@dataclass(frozen=True, slots=True)
class Side:
    """One side's answer: production's recorded response or a target's result.

    ``status`` is None when no response came; ``error_kind`` then says why. ``body_size``
    is the original size (``-1``: the length of ``body``); ``truncated`` says ``body`` holds
    only its first bytes. ``duration_ms`` is as measured by whoever recorded it: the
    replayer (client side) for targets, the capture middleware (server side) for production.
    """

    status: int | None
    headers: HeaderPairs = ()
    body: bytes = b""
    body_size: int = -1
    truncated: bool = False
    duration_ms: float = 0.0
    error_kind: str = ""
    incomplete: Incomplete | None = None

    @property
    def missing(self) -> Incomplete | None:
        """Why this side cannot be diffed as a whole, or None when it can."""
        if self.status is None:
            return Incomplete.DELIVERY_ERROR
        return self.incomplete

    @property
    def size(self) -> int:
        """The body's original size in bytes."""
        return len(self.body) if self.body_size < 0 else self.body_size

    @property
    def partial(self) -> bool:
        """True when ``body`` is only the first part of the response body."""
        return self.truncated or len(self.body) < self.size


@dataclass(frozen=True, slots=True)
class Request:
    """The request every side answered: the record's identity and route."""

    id: str
    method: str
    path: str
    ts: int = 0  # capture time, epoch ms
    incomplete: Incomplete | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A request with the answers collected for it, by target name.

    ``production`` is None for records captured without a response (``shadowtap collect``):
    they have no two-way baseline and are compared only in three-way mode.
    """

    request: Request
    sides: Mapping[str, Side] = field(default_factory=dict)
    production: Side | None = None


class Kind(StrEnum):
    """What differs at a place."""

    STATUS = "status"
    VALUE = "value"  # same JSON type, another value (a header's value, a text line)
    TYPE = "type"  # another JSON type (number → string, object → null, ...)
    ADDED = "added"  # only the second side has it (a key, a header, lines)
    REMOVED = "removed"  # only the first side has it
    LENGTH = "length"  # arrays of another length; bodies of another size
    ORDER = "order"  # the same array elements in another order
    HASH = "hash"  # binary bodies with other contents
    BODY_KIND = "body-kind"  # JSON on one side, text or binary on the other


@dataclass(slots=True)
class Difference:
    """One difference between two sides.

    ``field`` is where it is counted (``status``, ``header:etag``, ``$.items[*].price``,
    ``body:line``); ``where`` the concrete place (``$.items[3].price``, ``body:line 12``).
    ``a`` and ``b`` are the first and second side's values, shortened for display. ``noise``
    names the value class when both values are of one class (a noise-class difference).
    """

    field: str
    where: str
    kind: Kind
    a: object = None
    b: object = None
    noise: str = ""
