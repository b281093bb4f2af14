"""JSON bodies compared structurally, path by path.

The walk descends only where the two documents differ: equal subtrees are skipped with one
C-level ``==`` (confirmed by their orjson encodings, since Python's ``==`` holds ``true``
equal to ``1``). At each place it visits it asks the scope which noise rule governs it.

What it reports (shadowtap.diff.model.Kind): a value changed, a type changed, a key added or
removed, an array's length and an array's order (the same elements in another order: one
``order`` difference, not one per element). Arrays governed by an ``unordered`` rule are
matched as multisets: on a key member when the rule names one, otherwise by content, each
pair then compared under the rules for nested places, so nested arrays keep their own order
semantics (Diffy sorted arrays and got false diffs in nested ones, diffy PR#51).
"""

from __future__ import annotations

from typing import Any

import orjson

from shadowtap.diff.classes import classify
from shadowtap.diff.jsonpath import ROOT, member, normal_member
from shadowtap.diff.model import Difference, Kind
from shadowtap.diff.noise import Scope, json_type

_ORDER_LIMIT = 1000  # longer arrays are not checked for a pure reordering
_PAIRING_LIMIT = 256  # unordered arrays without a key: pairs tried by content at most
_NUMBERS = (int, float)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def diff_json(
    a: Any, b: Any, scope: Scope, *, allow_new: bool, limit: int, chars: int
) -> tuple[list[Difference], int]:
    """The differences between decoded documents ``a`` and ``b``, and how many were cut."""
    walk = _Walk(scope, limit, chars)
    walk.node(a, b, ROOT, ROOT, allow_new)
    return walk.out, walk.cut


def _same(x: Any, y: Any) -> bool:
    """Equal as JSON: 1 equals 1.0, but true does not equal 1."""
    tx = type(x)
    if tx is not type(y):
        return tx in _NUMBERS and type(y) in _NUMBERS and x == y
    if tx is dict or tx is list:
        return bool(x == y) and orjson.dumps(x) == orjson.dumps(y)
    return bool(x == y)


def _canonical(items: list[Any]) -> list[bytes]:
    return sorted(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in items)


class _Walk:
    __slots__ = ("chars", "cut", "limit", "out", "scope")

    def __init__(self, scope: Scope, limit: int, chars: int) -> None:
        self.scope = scope
        self.limit = limit
        self.chars = chars
        self.out: list[Difference] = []
        self.cut = 0

    def add(self, norm: str, path: str, kind: Kind, a: Any, b: Any, *, noise: str = "") -> None:
        self.keep(Difference(norm, path, kind, self.show(a), self.show(b), noise))

    def keep(self, difference: Difference) -> None:
        if len(self.out) >= self.limit:
            self.cut += 1
        else:
            self.out.append(difference)

    def show(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            value = orjson.dumps(value).decode()
        if isinstance(value, str) and len(value) > self.chars:
            return value[: self.chars] + "…"
        return value

    def node(self, a: Any, b: Any, path: str, norm: str, allow_new: bool) -> None:
        rule = None if self.scope.empty else self.scope.at(path)
        ruled = False
        if rule is not None:
            comparator = rule.comparator
            if comparator == "allow-new":
                allow_new = True
            elif comparator == "unordered":
                if type(a) is list and type(b) is list:
                    self.unordered(a, b, path, norm, allow_new=allow_new, key=rule.key)
                    return
            elif rule.equal(a, b):
                return
            else:
                ruled = True  # a comparator said these differ: not mere noise-class
        ta, tb = type(a), type(b)
        if ta is dict and tb is dict:
            self.mapping(a, b, path, norm, allow_new)
        elif ta is list and tb is list:
            self.array(a, b, path, norm, allow_new)
        else:
            self.leaf(a, b, path, norm, classes=not ruled)

    def leaf(self, a: Any, b: Any, path: str, norm: str, *, classes: bool = True) -> None:
        kind_a, kind_b = json_type(a), json_type(b)
        if kind_a != kind_b:
            self.add(norm, path, Kind.TYPE, a, b)
            return
        if a == b:
            return
        noise = ""
        if classes and kind_a == "string":
            found = classify(a)
            if found is not None and found == classify(b):
                noise = found
        self.add(norm, path, Kind.VALUE, a, b, noise=noise)

    def mapping(
        self, a: dict[str, Any], b: dict[str, Any], path: str, norm: str, allow_new: bool
    ) -> None:
        for key, value in a.items():
            if key in b:
                other = b[key]
                kind = type(value)
                if kind is type(other) and kind in _SCALARS:
                    if value != other:
                        self.node(
                            value, other, path + member(key), norm + normal_member(key), allow_new
                        )
                elif not _same(value, other):
                    self.node(
                        value, other, path + member(key), norm + normal_member(key), allow_new
                    )
            elif not self.ignored(path + member(key), added=False):
                self.add(norm + normal_member(key), path + member(key), Kind.REMOVED, value, None)
        for key, value in b.items():
            if key not in a and not allow_new and not self.ignored(path + member(key)):
                self.add(norm + normal_member(key), path + member(key), Kind.ADDED, None, value)

    def ignored(self, path: str, *, added: bool = True) -> bool:
        """Whether a key only one side has is noise at ``path``."""
        rule = None if self.scope.empty else self.scope.at(path)
        if rule is None:
            return False
        return rule.comparator == "ignore" or (added and rule.comparator == "allow-new")

    def array(self, a: list[Any], b: list[Any], path: str, norm: str, allow_new: bool) -> None:
        n = min(len(a), len(b))
        if len(a) == len(b):
            differing = [i for i in range(n) if not _same(a[i], b[i])]
            if not differing:
                return
            if len(differing) > 1 and n <= _ORDER_LIMIT and _canonical(a) == _canonical(b):
                self.add(norm, path, Kind.ORDER, a, b)
                return
        else:
            self.add(norm, path, Kind.LENGTH, len(a), len(b))
            # Compare what lies between the common head and tail, so one insertion is one
            # length difference, not a value difference at every later index.
            head = 0
            while head < n and _same(a[head], b[head]):
                head += 1
            tail = 0
            while tail < n - head and _same(a[-1 - tail], b[-1 - tail]):
                tail += 1
            differing = list(range(head, n - tail))
        for i in differing:
            self.node(a[i], b[i], f"{path}[{i}]", norm + "[*]", allow_new)

    def unordered(
        self, a: list[Any], b: list[Any], path: str, norm: str, *, allow_new: bool, key: str
    ) -> None:
        if key:
            left, right = self.match_on_key(a, b, key, path, norm=norm, allow_new=allow_new)
        else:
            left, right = self.match_by_content(a, b, path, norm, allow_new)
        for i in left:
            self.add(norm + "[*]", f"{path}[{i}]", Kind.REMOVED, a[i], None)
        if not allow_new:
            for j in right:
                self.add(norm + "[*]", f"{path}[{j}]", Kind.ADDED, None, b[j])

    def match_on_key(
        self, a: list[Any], b: list[Any], key: str, path: str, *, norm: str, allow_new: bool
    ) -> tuple[list[int], list[int]]:
        waiting: dict[Any, list[int]] = {}
        right: list[int] = []
        for j, item in enumerate(b):
            value = _key_of(item, key)
            if value is None:
                right.append(j)
            else:
                waiting.setdefault(value, []).append(j)
        left: list[int] = []
        for i, item in enumerate(a):
            candidates = waiting.get(_key_of(item, key))
            if not candidates:
                left.append(i)
                continue
            j = candidates.pop(0)
            if not _same(item, b[j]):
                self.node(item, b[j], f"{path}[{i}]", norm + "[*]", allow_new)
        right.extend(j for js in waiting.values() for j in js)
        return left, sorted(right)

    def match_by_content(
        self, a: list[Any], b: list[Any], path: str, norm: str, allow_new: bool
    ) -> tuple[list[int], list[int]]:
        exact: dict[bytes, list[int]] = {}
        for j, item in enumerate(b):
            exact.setdefault(orjson.dumps(item, option=orjson.OPT_SORT_KEYS), []).append(j)
        left = []
        for i, item in enumerate(a):
            found = exact.get(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
            if found:
                found.pop()
            else:
                left.append(i)
        right = sorted(j for js in exact.values() for j in js)
        if not left or not right or len(left) * len(right) > _PAIRING_LIMIT:
            return left, right
        # What is left may still be equal under the rules (noise inside the elements):
        # pair each with the first partner that shows no real difference.
        unmatched = []
        for i in left:
            for j in right:
                found_diffs = self.trial(a[i], b[j], f"{path}[{i}]", norm + "[*]", allow_new)
                if found_diffs is not None:
                    for difference in found_diffs:
                        self.keep(difference)
                    right.remove(j)
                    break
            else:
                unmatched.append(i)
        return unmatched, right

    def trial(
        self, a: Any, b: Any, path: str, norm: str, allow_new: bool
    ) -> list[Difference] | None:
        """The noise-class differences of a pair if it has no real ones, else None."""
        kept, cut = self.out, self.cut
        self.out, self.cut = [], 0
        try:
            self.node(a, b, path, norm, allow_new)
            found = self.out
            clean = self.cut == 0 and all(d.noise for d in found)
        finally:
            self.out, self.cut = kept, cut
        return found if clean else None


def _key_of(item: Any, key: str) -> Any:
    if type(item) is not dict:
        return None
    value = item.get(key)
    if isinstance(value, dict | list):
        return None
    return (json_type(value), value) if value is not None else None
