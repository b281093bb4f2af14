"""The deterministic sampling decision capture and the processor share.

A key (a request id, or a session key) hashes to a fixed position in [0, 100): keeping the
keys below ``percent`` keeps the same requests in every process, on every restart, and at
every stage, so capture's ``sample_percent`` and the processor's agree on which requests
they keep. Only the hash lives here; the processor's sampling stage built on it (route rules,
rate caps, session keys) is shadowtap.processors.sampling.
"""

from __future__ import annotations

import hashlib

_BUCKETS = 1_000_000


def bucket(key: str | bytes) -> float:
    """A stable position in [0, 100) for ``key``."""
    data = key.encode() if isinstance(key, str) else key
    n = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
    return (n % _BUCKETS) * 100.0 / _BUCKETS


def should_sample(key: str | bytes, percent: float) -> bool:
    """Keep ``percent`` % of keys, always the same ones."""
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    return bucket(key) < percent
