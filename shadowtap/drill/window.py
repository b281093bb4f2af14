"""Which records a drill replays: a capture-time window and request filters.

A record is in the window when its capture time (``env.ts``) is in ``[from, to)``. Times
are ISO-8601 (``2026-12-01T14:00``, ``2026-12-01T14:00:00+01:00``; no zone means UTC),
relative to now (``-2h``, ``-90m``, ``-30s``, ``-1d``, ``-1h30m``) or ``now``::

    window = Window.parse("-2h", "-1h", skew_s=30)     # or Window(from_ms, to_ms, skew_ms)
    window.holds(env.ts)                                # from <= ts < to
    window.read_from, window.read_to                    # from - skew, to + skew
    selection = Selection(methods=("GET",), paths=("/api/*",), routes=(), sources=("shop",))
    selection.selects(env)

Capture times can be slightly out of order across producers, so each partition is read
from the first offset at ``from - skew`` until its records pass ``to + skew``
(shadowtap.drill.plan). Path patterns are shadowtap.rules globs (``^`` for a regular
expression); ``routes`` match the topic the processor routed a record to
(``env.meta["route"]``); ``sources`` the capturing service's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from shadowtap.clock import now_ms, parse_when
from shadowtap.envelope import Envelope
from shadowtap.errors import ConfigError
from shadowtap.rules import compile_paths, upper_methods


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Window:
    """``[from_ms, to_ms)`` by capture time, read with ``skew_ms`` either side."""

    from_ms: int
    to_ms: int
    skew_ms: int = 30_000

    def __post_init__(self) -> None:
        if self.to_ms <= self.from_ms:
            raise ConfigError(
                f"the window is empty: --to ({iso(self.to_ms)}) must be after --from "
                f"({iso(self.from_ms)})"
            )
        if self.skew_ms < 0:
            raise ConfigError("--skew must not be negative")

    @classmethod
    def parse(
        cls, start: str, end: str = "now", skew_s: float = 30.0, now: int | None = None
    ) -> Window:
        current = now_ms() if now is None else now
        return cls(parse_when(start, current), parse_when(end, current), round(skew_s * 1000))

    def holds(self, ts: int) -> bool:
        return self.from_ms <= ts < self.to_ms

    @property
    def read_from(self) -> int:
        return self.from_ms - self.skew_ms

    @property
    def read_to(self) -> int:
        return self.to_ms + self.skew_ms

    def share_before(self, ts: int) -> float:
        """The share of the window before ``ts`` (progress by event time), 0..1."""
        span = self.to_ms - self.from_ms
        return min(1.0, max(0.0, (ts - self.from_ms) / span))

    def to_json(self) -> dict[str, object]:
        return {
            "from": iso(self.from_ms),
            "to": iso(self.to_ms),
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "skew_ms": self.skew_ms,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    """Request filters (each empty: no filter): methods, path globs, routes, sources."""

    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            compile_paths(self.paths)
        except ValueError as exc:
            raise ConfigError(f"--path: {exc}") from None

    def compiled(self) -> _Compiled:
        return _Compiled(self)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "methods": list(self.methods),
            "paths": list(self.paths),
            "routes": list(self.routes),
            "sources": list(self.sources),
        }

    @classmethod
    def from_json(cls, data: dict[str, Iterable[str]]) -> Selection:
        return cls(**{k: tuple(data.get(k, ())) for k in ("methods", "paths", "routes", "sources")})


class _Compiled:
    """A selection with its patterns compiled once (a drill checks every record)."""

    __slots__ = ("_methods", "_paths", "_routes", "_sources")

    def __init__(self, selection: Selection) -> None:
        self._methods = upper_methods(selection.methods)
        self._paths = compile_paths(selection.paths)
        self._routes = frozenset(selection.routes)
        self._sources = frozenset(selection.sources)

    def selects(self, env: Envelope) -> bool:
        if self._methods and env.method.upper() not in self._methods:
            return False
        if self._paths is not None and self._paths.match(env.path) is None:
            return False
        if self._routes and env.meta.get("route") not in self._routes:
            return False
        return not self._sources or env.source in self._sources
