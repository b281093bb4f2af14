"""Noise rules compiled for one endpoint and target: which rule governs a place, and how.

The rules file is compiled once; each (endpoint, target) gets a :class:`Scope` holding only
the rules that apply to it, in file order. ``Scope.at(path)`` answers, for a concrete body
path, the first rule whose JSONPath selects it (remembered, within a bounded cache: paths
full of random keys must not grow memory). Comparators decide equality of two values:

- ``ignore``: whatever differs here and below is noise;
- ``numeric``: numbers within ``tolerance`` or ``relative`` × the larger magnitude;
- ``timestamp``: timestamps at most ``seconds`` apart;
- ``type``: equal when of the same JSON type;
- ``regex``: equal when both values match ``pattern`` whole;
- ``unordered`` and ``allow-new`` change how the walk compares arrays and added keys
  (shadowtap.diff.structural).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from shadowtap.diff.classes import epoch_seconds
from shadowtap.diff.jsonpath import JsonPath
from shadowtap.diff.rules import NoiseRule, endpoint_matches

_CACHE_LIMIT = 16_384


class Compiled:
    """One noise rule, ready to match places and compare values."""

    __slots__ = ("_path", "_pattern", "comparator", "header", "key", "rule")

    def __init__(self, rule: NoiseRule) -> None:
        self.rule = rule
        self.comparator = rule.comparator
        self.key = rule.key
        self.header = rule.header.lower()
        self._path = JsonPath(rule.path) if rule.path else None
        self._pattern = re.compile(rule.pattern) if rule.pattern else None

    def selects(self, path: str) -> bool:
        return self._path is not None and self._path.matches(path)

    def selects_header(self, name: str) -> bool:
        return bool(self.header) and fnmatch.fnmatchcase(name, self.header)

    def equal(self, a: object, b: object) -> bool:
        """Whether ``a`` and ``b`` count as equal under this rule's comparator."""
        comparator = self.comparator
        if comparator == "ignore":
            return True
        if comparator == "type":
            return json_type(a) == json_type(b)
        if comparator == "numeric":
            x, y = _number(a), _number(b)
            if x is None or y is None:
                return False
            gap = abs(x - y)
            return gap <= self.rule.tolerance or gap <= self.rule.relative * max(abs(x), abs(y))
        if comparator == "timestamp":
            x, y = epoch_seconds(a), epoch_seconds(b)
            return x is not None and y is not None and abs(x - y) <= self.rule.seconds
        if comparator == "regex" and self._pattern is not None:
            return all(
                isinstance(v, str | int | float) and self._pattern.fullmatch(str(v)) is not None
                for v in (a, b)
            )
        return False


class Scope:
    """The rules that apply to one endpoint and target."""

    __slots__ = ("_body", "_cache", "_headers", "empty")

    def __init__(self, rules: Sequence[Compiled]) -> None:
        self._body = [r for r in rules if r.rule.path]
        self._headers = [r for r in rules if r.header]
        self._cache: dict[str, Compiled | None] = {}
        self.empty = not self._body

    def at(self, path: str) -> Compiled | None:
        """The first body rule selecting concrete path ``path``, or None."""
        try:
            return self._cache[path]
        except KeyError:
            pass
        found = next((r for r in self._body if r.selects(path)), None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[path] = found
        return found

    def header(self, name: str) -> Compiled | None:
        """The first header rule selecting lower-case header ``name``, or None."""
        return next((r for r in self._headers if r.selects_header(name)), None)


class NoisePolicy:
    """All noise rules, handing out one cached Scope per (endpoint, target)."""

    def __init__(self, rules: Sequence[NoiseRule]) -> None:
        self._rules = [Compiled(r) for r in rules]
        self._scopes: dict[tuple[str, str], Scope] = {}

    def scope(self, endpoint: str, target: str) -> Scope:
        key = (endpoint, target)
        scope = self._scopes.get(key)
        if scope is None:
            scope = Scope(
                [
                    r
                    for r in self._rules
                    if endpoint_matches(r.rule.endpoint, endpoint) and r.rule.target in ("", target)
                ]
            )
            if len(self._scopes) >= _CACHE_LIMIT:
                self._scopes.clear()
            self._scopes[key] = scope
        return scope


def json_type(value: object) -> str:
    """The JSON type of a decoded value (a bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
