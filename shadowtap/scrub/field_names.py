"""What a field's name says about its value: a secret, a phone number, or nothing.

Names are read as words (snake_case, camelCase, kebab-case, ``X-Header-Names``), never as
substrings: ``shipping`` is not ``pin``, ``hotel`` is not ``tel``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# A name holds a phone number when one of its words is one of these (glued to number/no/nr
# too: "phonenumber", "telno"), or ends in "phone" ("telephone", "homephone"). Words, not
# substrings: "hotel", "cancelled", "telemetry" and "cellar" are not phone names.
_PHONE_WORDS = frozenset(
    w + tail
    for w in ("phone", "tel", "telefon", "telefono", "mobile", "fax", "msisdn", "cell")
    for tail in ("", "number", "num", "no", "nr")
)
# ... unless its last word says the value is a time or a count ("phone_verified_at").
_NOT_PHONE_LAST = frozenset({"at", "on", "date", "time", "ts", "timestamp", "count"})


def words(name: str) -> list[str]:
    """``"X-Api-Key"`` → ``["x", "api", "key"]``; ``"cardNumber"`` → ``["card", "number"]``."""
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


class FieldRules:
    """Field names whose values are replaced without analysis (``scrub_field_names``)."""

    __slots__ = ("_cache", "_patterns")

    def __init__(self, names: Iterable[str]) -> None:
        self._patterns = frozenset("".join(words(n)) for n in names if n)
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, name: str) -> bool:
        """A word, adjacent words, or a long suffix of the name is a configured name."""
        hit = self._cache.get(name)
        if hit is None:
            hit = self._match(name)
            if len(self._cache) < 10_000:
                self._cache[name] = hit
        return hit

    def _match(self, name: str) -> bool:
        parts = words(name)
        for i in range(len(parts)):
            joined = ""
            for w in parts[i:]:
                joined += w
                if joined in self._patterns:
                    return True
        whole = "".join(parts)
        return any(len(p) >= 5 and whole.endswith(p) for p in self._patterns)


def is_phone_name(name: str) -> bool:
    """Whether a field's name says it holds a phone number (see ``_PHONE_WORDS``)."""
    parts = [w for w in (w.rstrip("0123456789") for w in words(name)) if w]  # phone2, at_1
    if not parts or parts[-1] in _NOT_PHONE_LAST:
        return False
    singular = (w[:-1] if w.endswith("s") else w for w in parts)
    return any(w in _PHONE_WORDS or w.endswith("phone") for w in singular)
