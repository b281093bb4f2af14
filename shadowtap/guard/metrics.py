"""The guard's counters, in Prometheus' text format without needing prometheus_client.

- ``shadowtap_guard_marked_requests_total{verdict,outcome}`` — requests that carried a marking
  (a signature or an id header), by verdict (valid, missing, malformed, wrong-id,
  bad-signature, expired) and what the guard did (mirrored, rejected, ordinary);
- ``shadowtap_guard_blocked_total{effect,action}`` — outbound side effects stopped during
  mirrored requests, by effect (http, smtp, email, celery) and action (raise, respond).

Serve ``metrics.render()`` on the app's own ``/metrics`` route; unmarked requests are not
counted, so they cost nothing here.
"""

from __future__ import annotations

import threading
from collections import Counter

_FAMILIES = (
    (
        "shadowtap_guard_marked_requests_total",
        "Requests that carried a mirroring marking, by verdict and outcome",
        ("verdict", "outcome"),
    ),
    (
        "shadowtap_guard_blocked_total",
        "Outbound side effects blocked during mirrored requests",
        ("effect", "action"),
    ),
)


class GuardMetrics:
    """Thread-safe counters; one instance per guard."""

    __slots__ = ("_counters", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: tuple[Counter[tuple[str, str]], ...] = (Counter(), Counter())

    def count_marked(self, verdict: str, outcome: str) -> None:
        with self._lock:
            self._counters[0][verdict, outcome] += 1

    def count_blocked(self, effect: str, action: str) -> None:
        with self._lock:
            self._counters[1][effect, action] += 1

    def marked(self, verdict: str, outcome: str) -> int:
        return self._counters[0][verdict, outcome]

    def blocked(self, effect: str = "", action: str = "") -> int:
        """How many blocks, of one effect and/or action (empty: any)."""
        return sum(
            n for (e, a), n in self._counters[1].items() if effect in ("", e) and action in ("", a)
        )

    def render(self) -> str:
        """The counters in the Prometheus text exposition format (0.0.4)."""
        lines: list[str] = []
        with self._lock:
            counters = [dict(c) for c in self._counters]
        for (name, text, labels), values in zip(_FAMILIES, counters, strict=True):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
            for key, value in sorted(values.items()):
                pairs = ",".join(
                    f'{label}="{_escape(v)}"' for label, v in zip(labels, key, strict=True)
                )
                lines.append(f"{name}{{{pairs}}} {value}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
