"""Value classes recognised on the fly: UUID, ULID, timestamps, hex ids, JWTs.

Two different values of the same class (two random UUIDs, two request times) are what every
version of a service produces on every call: Diffy reported such a field as "100 % diff"
(diffy#59). A difference between two values of one class is a *noise-class* difference,
counted and shown apart from real ones and never gating a deployment by itself.

``classify`` looks at a whole value; ``mask`` replaces class values inside a text (a line of
HTML, a ``Location`` header) with the class name, so lines that differ only there compare
equal after masking. ``epoch_seconds`` reads a timestamp for the ``timestamp`` comparator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

UUID = "uuid"
ULID = "ulid"
TIMESTAMP = "timestamp"
HEX = "hex"
JWT = "jwt"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{16,}")
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"
)
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov"
    r"|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT"
)
# Most specific first: a ULID is also a run of letters and digits, a UUID contains hex.
_WHOLE = (
    (JWT, _JWT),
    (UUID, _UUID),
    (ULID, _ULID),
    (TIMESTAMP, _ISO),
    (TIMESTAMP, _HTTP_DATE),
    (HEX, _HEX),
)
_EMBEDDED = re.compile(
    "(?<![0-9A-Za-z])(?:"
    + "|".join(f"(?P<{name}{i}>{rx.pattern})" for i, (name, rx) in enumerate(_WHOLE))
    + ")(?![0-9A-Za-z])"
)
# Epoch numbers between 2001 and 2100, in seconds or milliseconds.
_EPOCH_S = (1e9, 4.1e9)


def classify(value: str) -> str | None:
    """The class of a whole string value, or None when it has none."""
    n = len(value)
    if n < 16 or n > 4096:  # every class is at least 16 characters long
        return None
    for name, rx in _WHOLE:
        if rx.fullmatch(value):
            return name
    return None


def mask(text: str) -> tuple[str, str]:
    """``text`` with every class value in it replaced by ``<class>``, and the first class."""
    if len(text) < 16:
        return text, ""
    found: list[str] = []

    def name(match: re.Match[str]) -> str:
        found.append((match.lastgroup or "").rstrip("0123456789"))
        return f"<{found[-1]}>"

    masked = _EMBEDDED.sub(name, text)
    return masked, found[0] if found else ""


def epoch_seconds(value: object) -> float | None:
    """A timestamp as epoch seconds: ISO 8601 / RFC 3339, an HTTP date or an epoch number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        low, high = _EPOCH_S
        if low <= value <= high:
            return float(value)
        if low * 1000 <= value <= high * 1000:
            return value / 1000
        return None
    if not isinstance(value, str):
        return None
    if _ISO.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.replace(",", ".").replace("z", "Z"))
        except ValueError:
            return None
        if parsed.tzinfo is None:  # no offset: read as UTC, the same way on both sides
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if _HTTP_DATE.fullmatch(value):
        return parsedate_to_datetime(value).timestamp()
    return None
