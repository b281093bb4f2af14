"""Dedup: drop a request whose fingerprint was already seen inside a time window.

Settings (``[processor]``): ``dedup_enabled`` (default true), ``dedup_window_s`` (60),
``dedup_fields`` — what the fingerprint covers when there is no ``Idempotency-Key`` header:
any of ``method``, ``host``, ``path``, ``query``, ``body``, ``source`` or
``header:<name>`` (default method, path, query, body); ``dedup_max_keys`` bounds memory.

The fingerprint is pure; the memory of what was seen is a ``SeenStore``: the worker's is a
Faust windowed table (changelog-backed, so a restarted worker keeps deduplicating), the one
here keeps it in process for tests and tools. A store remembers the request id with the
fingerprint, so the *same* record delivered twice (at-least-once redelivery after a crash) is
not mistaken for a duplicate of itself::

    fp = fingerprint(env, settings.processor.dedup_fields)
    duplicate = store.check_and_add(fp, env.id, env.ts)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from shadowtap.envelope import Envelope

FIELDS = frozenset({"method", "host", "path", "query", "body", "source"})


def check_fields(fields: Sequence[str]) -> None:
    """Fail at start-up on a fingerprint field that does not exist."""
    for name in fields:
        if name not in FIELDS and not name.startswith("header:"):
            raise ValueError(
                f"unknown dedup field {name!r}: expected one of {sorted(FIELDS)} or header:<name>"
            )


def fingerprint(env: Envelope, fields: Sequence[str]) -> str:
    """``idem:<Idempotency-Key>`` when present, else a hash of the configured fields."""
    key = env.header("idempotency-key")
    if key:
        return "idem:" + key
    h = hashlib.blake2b(digest_size=16)
    for name in fields:
        if name == "body":
            h.update(hashlib.blake2b(env.body, digest_size=16).digest())
        elif name.startswith("header:"):
            h.update((env.header(name[7:]) or "").encode("utf-8", "surrogatepass"))
        else:
            h.update(str(getattr(env, name)).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


class SeenStore(Protocol):
    def check_and_add(self, fp: str, request_id: str, ts_ms: int) -> bool:
        """True when ``fp`` was seen for another request within the window; else record it."""
        ...


class MemorySeen:
    """In-process store: insertion-ordered, expired by window, bounded by ``max_keys``."""

    __slots__ = ("_items", "max_keys", "window_ms")

    def __init__(self, window_s: float, max_keys: int = 1_000_000) -> None:
        self.window_ms = int(window_s * 1000)
        self.max_keys = max_keys
        self._items: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def check_and_add(self, fp: str, request_id: str, ts_ms: int) -> bool:
        self._expire(ts_ms)
        seen = self._items.get(fp)
        if seen is not None:
            first_id, first_ts = seen
            if first_id != request_id and ts_ms - first_ts < self.window_ms:
                return True
            if first_id == request_id:
                return False
        self._items[fp] = (request_id, ts_ms)
        self._items.move_to_end(fp)
        while len(self._items) > self.max_keys:
            self._items.popitem(last=False)
        return False

    def _expire(self, now_ms: int) -> None:
        items = self._items
        while items:
            fp, (_, ts) = next(iter(items.items()))
            if now_ms - ts < self.window_ms:
                break
            del items[fp]
