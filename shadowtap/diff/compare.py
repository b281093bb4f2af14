"""Two sides compared: status, then headers, then body.

Used for every pair a run compares (candidate vs baseline, baseline vs secondary, production
vs a target)::

    differ = Differ(rules)
    comparison = differ.compare(baseline_side, candidate_side, "GET /users/{id}", "v2")
    comparison.differences      # [Difference(field="$.items[*].price", kind=VALUE, ...)]

- **Status** first: when the statuses differ, that is the one difference; bodies of a 200
  and a 500 differ as a consequence, not as more findings.
- **Headers** by lower-case name, repeated ones joined in order. ``Date``, ``Server``,
  ``Content-Length`` (the body says it better), hop-by-hop headers and the guard's
  ``X-Shadowtap-Guard`` (only a mirrored answer has it) are ignored unless
  ``compare_defaults`` is set; ``only`` narrows to a set; header noise rules apply; values
  differing only in class values (ids, HTTP dates) are noise-class.
- **Body**: JSON (by content type, or by shape when there is none) structurally
  (shadowtap.diff.structural), other UTF-8 text line by line, anything else by hash. A body
  of one kind on one side and another on the other is one ``body-kind`` difference.
- A body **cut** on either side (truncated at a size limit) is compared only up to what
  both kept, as text or bytes, and the comparison is marked ``partial``; different
  original sizes are a ``length`` difference at ``body:size``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowtap.diff.classes import mask
from shadowtap.diff.model import Difference, HeaderPairs, Kind, Side
from shadowtap.diff.noise import NoisePolicy, Scope
from shadowtap.diff.rules import Rules
from shadowtap.diff.structural import diff_json
from shadowtap.diff.text import diff_binary, diff_text
from shadowtap.headers import HOP_BY_HOP

STATUS = "status"
BODY_SIZE = "body:size"
BODY_KIND = "body:kind"
DEFAULT_IGNORED_HEADERS = HOP_BY_HOP | {"date", "server", "content-length", "x-shadowtap-guard"}
# The structural walk recurses about three frames a level; Python allows 1,000 frames.
_MAX_DEPTH = 200


@dataclass(slots=True)
class Comparison:
    """What differs between two sides; ``cut`` differences past the per-pair limit."""

    differences: list[Difference] = field(default_factory=list)
    partial: bool = False
    cut: int = 0

    @property
    def real(self) -> list[Difference]:
        """The differences that are not noise-class."""
        return [d for d in self.differences if not d.noise]


class Differ:
    """Compares sides under one rules file. ``limit`` bounds the differences kept per pair,
    ``chars`` the length of each value kept for display."""

    def __init__(self, rules: Rules | None = None, *, limit: int = 200, chars: int = 200) -> None:
        rules = rules or Rules()
        self._policy = NoisePolicy(rules.noise)
        self._allow_new = rules.allow_new_fields
        self._only = frozenset(h.lower() for h in rules.headers.only)
        ignored = frozenset(h.lower() for h in rules.headers.ignore)
        self._ignored = (
            ignored if rules.headers.compare_defaults else ignored | DEFAULT_IGNORED_HEADERS
        )
        self._limit = limit
        self._chars = chars

    def compare(self, a: Side, b: Side, endpoint: str = "", target: str = "") -> Comparison:
        """Differences of ``b`` from ``a`` (status, headers, body) at ``endpoint``."""
        if a.status != b.status:
            return Comparison([Difference(STATUS, STATUS, Kind.STATUS, a.status, b.status)])
        scope = self._policy.scope(endpoint, target)
        result = Comparison(self._headers(a.headers, b.headers, scope), a.partial or b.partial)
        if result.partial:
            self._cut_bodies(a, b, result)
        elif a.body != b.body:
            self._bodies(a, b, scope, result)
        return result

    def _headers(self, a: HeaderPairs, b: HeaderPairs, scope: Scope) -> list[Difference]:
        first, second = self._index(a), self._index(b)
        if first == second:
            return []
        out = []
        for name in [*first, *(n for n in second if n not in first)]:
            x, y = first.get(name), second.get(name)
            if x == y:
                continue
            rule = scope.header(name)
            if rule is not None and (
                rule.comparator == "ignore"
                or (x is not None and y is not None and rule.equal(x, y))
            ):
                continue
            where = f"header:{name}"
            if x is None:
                out.append(Difference(where, where, Kind.ADDED, None, y))
            elif y is None:
                out.append(Difference(where, where, Kind.REMOVED, x, None))
            else:
                masked_x, noise = mask(x)
                same_class = bool(noise) and masked_x == mask(y)[0]
                out.append(Difference(where, where, Kind.VALUE, x, y, noise if same_class else ""))
        return out

    def _index(self, headers: HeaderPairs) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in headers:
            low = name.lower()
            if low in self._ignored or (self._only and low not in self._only):
                continue
            out[low] = f"{out[low]}, {value}" if low in out else value
        return out

    def _bodies(self, a: Side, b: Side, scope: Scope, result: Comparison) -> None:
        kind_a, value_a = _decode(a)
        kind_b, value_b = _decode(b)
        if kind_a != kind_b:
            result.differences.append(
                Difference(BODY_KIND, BODY_KIND, Kind.BODY_KIND, kind_a, kind_b)
            )
            return
        if kind_a == "json" and _deep(a.body, b.body):
            # Deeper than the walk may recurse (a hostile or broken body): compare as text.
            found, result.cut = diff_text(
                a.body.decode(), b.body.decode(), limit=self._limit, chars=self._chars
            )
        elif kind_a == "json":
            found, result.cut = diff_json(
                value_a,
                value_b,
                scope,
                allow_new=self._allow_new,
                limit=self._limit,
                chars=self._chars,
            )
        elif kind_a == "text":
            found, result.cut = diff_text(value_a, value_b, limit=self._limit, chars=self._chars)
        else:
            found = diff_binary(a.body, b.body)
        result.differences.extend(found)

    def _cut_bodies(self, a: Side, b: Side, result: Comparison) -> None:
        if a.size != b.size:
            result.differences.append(Difference(BODY_SIZE, BODY_SIZE, Kind.LENGTH, a.size, b.size))
        kept = min(len(a.body), len(b.body))
        x, y = a.body[:kept], b.body[:kept]
        if x == y:
            return
        text_x, text_y = _text(x), _text(y)
        if text_x is None or text_y is None:
            result.differences.extend(diff_binary(x, y))
            return
        found, result.cut = diff_text(text_x, text_y, limit=self._limit, chars=self._chars)
        result.differences.extend(found)


def _decode(side: Side) -> tuple[str, Any]:
    """``(kind, value)``: ``json`` and the document, ``text`` and a str, ``binary``, ``empty``."""
    body = side.body
    if not body:
        return "empty", None
    content_type = next((v.lower() for k, v in side.headers if k.lower() == "content-type"), "")
    if "json" in content_type or (not content_type and body.lstrip()[:1] in (b"{", b"[")):
        try:
            return "json", orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    text = _text(body)
    return ("binary", body) if text is None else ("text", text)


def _deep(*bodies: bytes) -> bool:
    """Whether a JSON body may nest deeper than the structural walk recurses.

    A cheap upper bound on depth: the number of opening brackets. Only bodies with more
    than ``_MAX_DEPTH`` of them are scanned for their real depth.
    """
    for body in bodies:
        if body.count(b"{") + body.count(b"[") <= _MAX_DEPTH:
            continue
        depth = deepest = 0
        in_string = escaped = False
        for byte in body:
            if in_string:
                if escaped:
                    escaped = False
                elif byte == 0x5C:  # backslash
                    escaped = True
                elif byte == 0x22:  # quote
                    in_string = False
            elif byte == 0x22:
                in_string = True
            elif byte in (0x7B, 0x5B):
                depth += 1
                deepest = max(deepest, depth)
            elif byte in (0x7D, 0x5D):
                depth -= 1
        if deepest > _MAX_DEPTH:
            return True
    return False


def _text(body: bytes) -> str | None:
    """``body`` as text when it is UTF-8 without NUL bytes (a cut last character is let go)."""
    if b"\x00" in body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return body[: exc.start].decode("utf-8")
        return None
