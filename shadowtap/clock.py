"""Epoch milliseconds: the clock every stage stamps and compares with, and the times the
commands take (``--since 30m``, ``--from -2h``, ``now``, ISO 8601, read as UTC unless it
says otherwise)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from shadowtap.errors import ConfigError

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_RELATIVE = re.compile(r"-(?:(\d+(?:\.\d+)?)([dhms]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_since(text: str, now: int | None = None) -> int:
    """``30m``/``2h``/``7d`` (that long ago) or an ISO 8601 time → epoch milliseconds."""
    current = now if now is not None else now_ms()
    value = text.strip().lower()
    age = _AGE.fullmatch(value)
    if age is not None:
        return current - int(float(age[1]) * _UNIT_S[age[2]] * 1000)
    try:
        return _iso_ms(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is invalid: expected an age such as 30m, 2h, 7d or an "
            "ISO 8601 time such as 2024-11-24T10:00:00+00:00"
        ) from None


def parse_when(text: str, now: int | None = None) -> int:
    """Epoch milliseconds for ``now``, ``-2h``-style offsets or ISO-8601 (UTC unless it says)."""
    value = text.strip()
    current = now_ms() if now is None else now
    if value.lower() == "now":
        return current
    if _RELATIVE.fullmatch(value):
        return current - round(sum(float(n) * _UNIT_MS[unit] for n, unit in _PART.findall(value)))
    try:
        return _iso_ms(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"time {text!r} is invalid: expected ISO-8601 (2026-12-01T14:00Z), "
            "a relative time (-2h, -90m, -1d) or now"
        ) from None


def _iso_ms(value: str) -> int:
    """An ISO 8601 time (UTC when it names no offset) in epoch milliseconds; ValueError."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
