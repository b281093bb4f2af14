"""Which requests a rule selects, the same way in every stage: a path pattern and methods.

A path pattern is a glob (``/api/*``) or, when it starts with ``^``, a regular expression
matched from the start of the path. Methods are HTTP methods in any case; none means every
method. Settings check each pattern as they are loaded, so a bad regular expression stops
start-up naming its key (:class:`RequestRule`, ``capture.include_paths``...); a stage
compiles the patterns once, when it is built::

    paths = compile_paths(["/health*", "^/v[12]/"])      # one alternation, or None
    route = RouteMatcher("/api/*", ["get"])
    route.matches("GET", "/api/orders")                  # True
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def compile_path(pattern: str) -> re.Pattern[str]:
    """A glob, or a regular expression when it starts with ``^``; ValueError says what is wrong."""
    if not pattern.startswith("^"):
        return re.compile(fnmatch.translate(pattern))
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"path {pattern!r} is not a valid regular expression ({exc}): write a glob such "
            "as /api/* or a regular expression starting with ^"
        ) from None


def compile_paths(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation for many patterns, so a check is a single regex call (None: no patterns)."""
    parts = [compile_path(p).pattern for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts))


def check_paths(key: str, patterns: Sequence[str]) -> None:
    """For settings: ValueError naming ``key[i]`` when a pattern does not compile."""
    for i, pattern in enumerate(patterns):
        try:
            compile_path(pattern)
        except ValueError as exc:
            raise ValueError(f"{key}[{i}]: {exc}") from None


def upper_methods(methods: Iterable[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in methods)


@dataclass(frozen=True, slots=True)
class RequestRule:
    """A path pattern and methods (empty: every method), checked when settings are loaded.

    The settings for sampling, routing and a replay target's allow/deny lists are rules.
    """

    path: str = "*"
    methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        compile_path(self.path)


class RouteMatcher:
    """A rule compiled for matching: method set plus path pattern."""

    __slots__ = ("methods", "path")

    def __init__(self, path: str, methods: Iterable[str]) -> None:
        self.path = compile_path(path)
        self.methods = upper_methods(methods)

    @classmethod
    def of(cls, rule: RequestRule) -> RouteMatcher:
        return cls(rule.path, rule.methods)

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return self.path.match(path) is not None
