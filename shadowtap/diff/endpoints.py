"""Endpoints: requests grouped by route template, ``GET /users/{id}``, not by raw path.

Templates come from configuration first (``templates = ["/users/{id}", "GET /orders/{id}"]``
in the rules file: ``{name}`` stands for the text of one path segment, or part of one; a
leading method restricts a template to that method), in the order given. A path no template
matches is templated by learning: a segment that is all digits becomes ``{id}``, a UUID
``{uuid}``, a run of 8+ hex characters with a digit ``{hex}``, a run of 20+ letters and
digits with both ``{hash}``. Words stay, so ``/users/me`` and ``/users/42`` are two
endpoints: ``/users/me`` and ``/users/{id}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shadowtap.diff.classes import UUID, classify

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[A-Z]+")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_HASH = re.compile(r"[A-Za-z0-9]{20,}")
_CACHE_LIMIT = 8192


def learn(path: str) -> str:
    """The learned template of ``path``: id-like segments replaced by placeholders."""
    if not path:
        return "/"
    return "/".join(_segment(s) for s in path.split("/"))


def _segment(segment: str) -> str:
    if not segment or segment.isalpha():
        return segment
    if segment.isdigit() and segment.isascii():
        return "{id}"
    if len(segment) == 36 and classify(segment) == UUID:
        return "{uuid}"
    has_digit = any(c.isdigit() for c in segment)
    if has_digit and _HEX.fullmatch(segment):
        return "{hex}"
    if has_digit and _HASH.fullmatch(segment):
        return "{hash}"
    return segment


def compile_template(text: str) -> tuple[str, str, re.Pattern[str]]:
    """``(method, template, regex)`` of a configured template; ValueError says what is wrong."""
    method, _, template = text.strip().rpartition(" ")
    method = method.strip()
    if method and not _METHOD.fullmatch(method):
        raise ValueError(f"template {text!r}: {method!r} is not an HTTP method in capitals")
    if not template.startswith("/"):
        raise ValueError(f"template {text!r}: a template is a path starting with '/'")
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise ValueError(f"template {text!r}: placeholders are written {{name}}")
    # split() interleaves literal parts with group names: odd indices are placeholders.
    pieces = _PLACEHOLDER.split(template)
    pattern = "".join("[^/]+" if i % 2 else re.escape(p) for i, p in enumerate(pieces))
    return method, template, re.compile(pattern)


class Endpoints:
    """Names the endpoint of a request: ``METHOD template``."""

    def __init__(self, templates: Sequence[str] = (), *, learn_templates: bool = True) -> None:
        self._templates = [compile_template(t) for t in templates]
        self._learn = learn_templates
        self._cache: dict[tuple[str, str], str] = {}

    def key(self, method: str, path: str) -> str:
        """``GET /users/{id}`` for ``("GET", "/users/42")``."""
        cache_key = (method, path)
        found = self._cache.get(cache_key)
        if found is not None:
            return found
        found = f"{method} {self.template(method, path)}"
        if len(self._cache) >= _CACHE_LIMIT:  # paths full of ids are endless: stay bounded
            self._cache.clear()
        self._cache[cache_key] = found
        return found

    def template(self, method: str, path: str) -> str:
        """The route template of ``path``: configured first, then learned (or the path)."""
        for wanted, template, regex in self._templates:
            if (not wanted or wanted == method) and regex.fullmatch(path):
                return template
        return learn(path) if self._learn else (path or "/")
