"""Header lookups every stage shares: one place that says how a name is matched.

Records keep headers as a list of ``(name, value)`` pairs, in order and with duplicates, as
they came over the wire. HTTP header names are case-insensitive; where a name repeats, the
first value is the one these helpers return.
"""

from __future__ import annotations

from collections.abc import Container

Headers = list[tuple[str, str]]

# Hop-by-hop headers (RFC 9110 §7.6.1) mean something for one connection only: a replay
# never forwards them and a diff never compares them.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (any case), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def cookie_value(headers: Headers, name: str) -> str | None:
    """The value of cookie ``name`` from the ``Cookie`` headers, or None."""
    for key, value in headers:
        if key.lower() != "cookie":
            continue
        for part in value.split(";"):
            k, sep, v = part.strip().partition("=")
            if sep and k == name:
                return v
    return None


def without(headers: Headers, names: Container[str]) -> Headers:
    """``headers`` less every header whose name (any case) is in ``names`` (lowercase)."""
    return [(k, v) for k, v in headers if k.lower() not in names]
