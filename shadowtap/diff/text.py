"""Bodies that are not JSON: text line by line, anything else by hash.

Text lines are matched with difflib (the longest matching blocks, so one inserted line is
one ``added`` difference, not a change on every later line). A changed line whose only
differences are class values (shadowtap.diff.classes: ids, times, tokens) is a noise-class
difference. Binary bodies are equal or not: their SHA-256 digests are what a report shows.
"""

from __future__ import annotations

import difflib
import hashlib

from shadowtap.diff.classes import mask
from shadowtap.diff.model import Difference, Kind

LINE = "body:line"
DIGEST = "body:sha256"


def diff_text(a: str, b: str, *, limit: int, chars: int) -> tuple[list[Difference], int]:
    """Differences between two texts, line by line, and how many were cut at ``limit``."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    if lines_a == lines_b:
        return [], 0
    found: list[Difference] = []

    def add(where: int, kind: Kind, x: str | None, y: str | None, noise: str = "") -> None:
        found.append(
            Difference(LINE, f"{LINE} {where + 1}", kind, _cut(x, chars), _cut(y, chars), noise)
        )

    matcher = difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            x, y = lines_a[i1 + k], lines_b[j1 + k]
            masked_x, noise = mask(x)
            masked_y, _ = mask(y)
            add(i1 + k, Kind.VALUE, x, y, noise if masked_x == masked_y and noise else "")
        for i in range(i1 + pairs, i2):
            add(i, Kind.REMOVED, lines_a[i], None)
        for j in range(j1 + pairs, j2):
            add(j, Kind.ADDED, None, lines_b[j])
    return found[:limit], max(0, len(found) - limit)


def diff_binary(a: bytes, b: bytes) -> list[Difference]:
    """One ``hash`` difference when the bytes differ."""
    if a == b:
        return []
    digest_a, digest_b = (hashlib.sha256(x).hexdigest() for x in (a, b))
    return [Difference(DIGEST, DIGEST, Kind.HASH, digest_a, digest_b)]


def _cut(text: str | None, chars: int) -> str | None:
    if text is None or len(text) <= chars:
        return text
    return text[:chars] + "…"
