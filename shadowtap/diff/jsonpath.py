"""JSON paths: how a difference's place is written, and the JSONPath rules that select it.

Every difference carries two paths:

- the concrete one, ``$.items[3].price``: members as ``.name`` (or ``['odd key']`` when the
  name is not an identifier), array elements by index;
- the normalised one, ``$.items[*].price``, under which differences are counted: every
  array index becomes ``[*]``, and a member whose name is an id (all digits, a UUID, a hex
  id...) becomes ``.*``, so a map keyed by ids is one field, not one field per id.

A normalised path is itself a rule path, so a field read off a report can be pasted into
``shadowtap diff noise add``.

Rules use the JSONPath subset that selects by position (RFC 9535): ``$``, ``.name``,
``['name']``, ``[0]``, wildcards ``.*``/``[*]``, unions ``['a','b']`` and recursive descent
``..name``/``..*``/``..[0]``, which goes through arrays of objects as through objects (the
case where Keploy's rules fail, keploy#2816, #3311). A rule is compiled once into a regular
expression over concrete paths: deciding whether a difference is selected costs one regex
match, where evaluating the rule against each document with a JSONPath library costs
200-300 µs a rule (bench/diff.py measures both). Filters, slices and negative indices depend
on the document, not only on the position, and are refused with a clear error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NoReturn

from shadowtap.diff.classes import classify

ROOT = "$"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One segment of a concrete path, as member() and element() write it.
_ANY = r"(?:\.[A-Za-z_][A-Za-z0-9_]*|\['(?:[^'\\]|\\.)*'\]|\[\d+\])"
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "/": "/", "\\": "\\"}


@functools.lru_cache(maxsize=8192)  # bounded: random keys must not grow memory
def member(key: str) -> str:
    """The concrete path segment of object member ``key``."""
    if _IDENT.fullmatch(key):
        return "." + key
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


@functools.lru_cache(maxsize=8192)
def normal_member(key: str) -> str:
    """The normalised segment of member ``key``: ``.*`` when the name is an id."""
    if key.isdigit() or (len(key) >= 16 and classify(key) is not None):
        return ".*"
    return member(key)


def render(parts: Iterable[str | int]) -> str:
    """The concrete path of a sequence of member names and array indices."""
    return ROOT + "".join(f"[{p}]" if isinstance(p, int) else member(p) for p in parts)


class JsonPath:
    """A compiled rule path: ``matches`` tells whether it selects a concrete path."""

    __slots__ = ("_regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._regex = re.compile(_Parser(text).regex())

    def matches(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"


class _Parser:
    """Recursive-descent parser of the supported subset; raises ValueError saying why."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def regex(self) -> str:
        if not self.text.startswith(ROOT):
            self._fail("a path starts with '$'")
        self.i = 1
        out = [re.escape(ROOT)]
        while self.i < len(self.text):
            if self.text.startswith("..", self.i):
                self.i += 2
                out.append(_ANY + "*")
                out.append(self._selection(after_dots=True))
            elif self.text[self.i] == ".":
                self.i += 1
                out.append(self._selection(after_dots=False))
            elif self.text[self.i] == "[":
                out.append(self._bracket())
            else:
                self._fail("expected '.', '..' or '['")
        return "".join(out)

    def _selection(self, *, after_dots: bool) -> str:
        if self.i >= len(self.text):
            self._fail("a name, '*' or '[' must follow the dot")
        if self._take("*"):
            return _ANY
        if after_dots and self.text[self.i] == "[":
            return self._bracket()
        start = self.i
        while self.i < len(self.text) and _is_name_char(self.text[self.i], self.i == start):
            self.i += 1
        if self.i == start:
            self._fail("expected a member name or '*'")
        return re.escape(member(self.text[start : self.i]))

    def _bracket(self) -> str:
        self.i += 1  # '['
        choices = [self._selector()]
        while True:
            self._skip_space()
            if self._take("]"):
                break
            if not self._take(","):
                self._fail("expected ',' or ']'")
            choices.append(self._selector())
        return choices[0] if len(choices) == 1 else "(?:" + "|".join(choices) + ")"

    def _selector(self) -> str:
        self._skip_space()
        if self.i >= len(self.text):
            self._fail("unclosed '['")
        char = self.text[self.i]
        if char == "*":
            self.i += 1
            return _ANY
        if char in "'\"":
            return re.escape(member(self._string(char)))
        if char == "?":
            self._fail("filters ([?...]) are not supported: they depend on the document")
        match = re.compile(r"-?\d+").match(self.text, self.i)
        if match is None:
            self._fail("expected a quoted name, an index or '*'")
        self.i = match.end()
        self._skip_space()
        if self.i < len(self.text) and self.text[self.i] == ":":
            self._fail("slices are not supported; use [*] or an index")
        index = int(match.group())
        if index < 0:
            self._fail("negative indices are not supported; use [*] or an index")
        return re.escape(f"[{index}]")

    def _string(self, quote: str) -> str:
        self.i += 1
        chars: list[str] = []
        while self.i < len(self.text):
            char = self.text[self.i]
            self.i += 1
            if char == quote:
                return "".join(chars)
            if char != "\\":
                chars.append(char)
                continue
            if self.i >= len(self.text):
                break
            escaped = self.text[self.i]
            self.i += 1
            if escaped == quote:
                chars.append(quote)
            elif escaped in _ESCAPES:
                chars.append(_ESCAPES[escaped])
            elif escaped == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.text[self.i : self.i + 4]):
                chars.append(chr(int(self.text[self.i : self.i + 4], 16)))
                self.i += 4
            else:
                self._fail(f"unknown escape '\\{escaped}' in a quoted name")
        self._fail("unclosed quoted name")

    def _skip_space(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\n\r":
            self.i += 1

    def _take(self, char: str) -> bool:
        if self.text.startswith(char, self.i):
            self.i += 1
            return True
        return False

    def _fail(self, why: str) -> NoReturn:
        raise ValueError(f"JSONPath {self.text!r} at position {self.i}: {why}")


def _is_name_char(char: str, first: bool) -> bool:
    # RFC 9535 member-name-shorthand: ALPHA / "_" / non-ASCII, then also DIGIT.
    if char == "_" or ord(char) >= 0x80 or ("a" <= char.lower() <= "z"):
        return True
    return not first and char.isascii() and char.isdigit()
