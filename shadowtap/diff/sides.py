"""A result record (shadowtap.results) as the diff sees it: the request, the target's side
and production's side.

The request's time is its capture time (``captured``; results written before it was added
fall back to ``ts``, when the result was written), so pairing runs on capture time. A
request whose body was not all there (``incomplete``) is counted apart, never diffed as if
whole; a delivery without a response is a side with no status (``missing``).
"""

from __future__ import annotations

from typing import NamedTuple

from shadowtap.diff.model import Incomplete, Request, Side
from shadowtap.envelope import Response
from shadowtap.results import Result

_INCOMPLETE = {i.value: i for i in Incomplete}


class Answer(NamedTuple):
    request: Request
    target: str
    side: Side
    production: Side | None


def answer(result: Result) -> Answer:
    """The request, target side and production side a result carries."""
    request = Request(
        result.id,
        result.method,
        result.path,
        result.captured or result.ts,
        # An unknown reason from a later writer is still a reason not to trust the body.
        _INCOMPLETE.get(result.incomplete, Incomplete.BODY_UNREAD) if result.incomplete else None,
    )
    side = Side(
        result.status,
        result.headers,
        result.body,
        max(result.body_size, len(result.body)),
        result.truncated,
        result.duration_ms,
        result.error_kind,
    )
    production = None if result.production is None else production_side(result.production)
    return Answer(request, result.target, side, production)


def production_side(response: Response) -> Side:
    """Production's recorded response (its duration is server-side, measured by capture)."""
    return Side(
        response.status,
        response.headers,
        response.body,
        max(response.body_size, len(response.body)),
        response.truncated,
        response.duration_ms,
    )
