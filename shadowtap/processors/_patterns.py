"""Route matching shared by the sampling and routing rules: compiled once at start-up."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable


def compile_path(pattern: str) -> re.Pattern[str]:
    """A glob (``/api/*``) or, when it starts with ``^``, a regular expression."""
    if pattern.startswith("^"):
        return re.compile(pattern)
    return re.compile(fnmatch.translate(pattern))


def compile_paths(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation for many patterns, so a check is a single regex call."""
    parts = [compile_path(p).pattern for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts))


def upper_methods(methods: Iterable[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in methods)


class RouteMatcher:
    """Method set plus path pattern; an empty method set matches every method."""

    __slots__ = ("methods", "path")

    def __init__(self, path: str, methods: Iterable[str]) -> None:
        self.path = compile_path(path)
        self.methods = upper_methods(methods)

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return self.path.match(path) is not None
