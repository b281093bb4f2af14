"""What a drill saw, as figures: every delivery the engine hands to its outbox is counted here.

``success`` is an answer below 500 (no transport error, no 5xx): a DR site that answers a
client's own mistake with 4xx, as production did, served it. Figures::

    book = DrillBook(plan, speed=1.0)          # speed None: max
    engine.observe = book.add                  # (envelope, delivery) as each finishes
    figures = book.figures(steady_s=60, steady_goal=0.995)

- ``success_rate``: successes / requests sent (blocked ones are not sent);
- ``coverage``: requests sent / records in the window;
- ``achieved_speed``: recorded time covered / wall time taken (requested: ``speed``);
- ``time_to_first_success_s``: from the first request sent to the first success;
- ``time_to_steady_s``: from the first request sent to the start of the first stretch of
  ``steady_s`` seconds in which every second's success rate is at or above the goal (None:
  never, or the run was shorter);
- latency per endpoint and overall (``*``): target against recorded production, p50/p95/p99
  with ratios target / production (shadowtap.diff.latency).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shadowtap.diff.latency import PRODUCTION
from shadowtap.diff.summary import LatencySummary
from shadowtap.drill.plan import ALL, Plan, endpoint
from shadowtap.envelope import Envelope
from shadowtap.results import Delivery

TARGET = "target"
SAMPLES = 3


def family(delivery: Delivery) -> str:
    """``2xx``…``5xx``, or ``error`` (no answer) / ``blocked`` (not sent)."""
    if delivery.error_kind == "blocked":
        return "blocked"
    if delivery.status is None:
        return "error"
    return f"{delivery.status // 100}xx"


def is_success(delivery: Delivery) -> bool:
    return delivery.status is not None and delivery.status < 500 and not delivery.error_kind


@dataclass(slots=True)
class ErrorGroup:
    kind: str
    endpoint: str
    count: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)


class DrillBook:
    """Counts, per-second series and latency sketches over one drill's deliveries."""

    def __init__(self, plan: Plan, speed: float | None, clock: Any = time.monotonic) -> None:
        self.plan = plan
        self.speed = speed
        self._clock = clock
        self.sent = 0
        self.succeeded = 0
        self.blocked = 0
        self.status_mix: Counter[tuple[str, str]] = Counter()
        self.errors: dict[tuple[str, str], ErrorGroup] = {}
        self.latency = plan.latency  # production's side from the plan; the target's here
        self.first_sent: float | None = None
        self.last_done: float | None = None
        self.first_success: float | None = None
        self.per_second: dict[int, list[int]] = {}  # second since first sent: [sent, ok]
        self.min_ts: int | None = None
        self.max_ts: int | None = None

    def add(self, env: Envelope, delivery: Delivery) -> None:
        """One finished delivery (the engine's ``observe`` hook)."""
        now = self._clock()
        kind = family(delivery)
        name = endpoint(env)
        self.status_mix[(env.method.upper(), kind)] += 1
        if kind == "blocked":
            self.blocked += 1
            return
        if self.first_sent is None:
            self.first_sent = now - delivery.duration_ms / 1000
        self.last_done = now
        self.sent += 1
        second = int(now - self.first_sent)
        bucket = self.per_second.setdefault(second, [0, 0])
        bucket[0] += 1
        self.min_ts = env.ts if self.min_ts is None else min(self.min_ts, env.ts)
        self.max_ts = env.ts if self.max_ts is None else max(self.max_ts, env.ts)
        if is_success(delivery):
            self.succeeded += 1
            bucket[1] += 1
            if self.first_success is None:
                self.first_success = now
        else:
            label = delivery.error_kind or f"HTTP {delivery.status}"
            group = self.errors.setdefault((label, name), ErrorGroup(label, name))
            group.count += 1
            if len(group.samples) < SAMPLES:
                group.samples.append(
                    {
                        "id": env.id,
                        "method": env.method,
                        "path": env.path,
                        "status": delivery.status,
                        "error": delivery.error[:300],
                        "attempts": delivery.attempts,
                    }
                )
        if delivery.status is not None:
            self.latency.add(name, TARGET, delivery.duration_ms)
            self.latency.add(ALL, TARGET, delivery.duration_ms)

    # -- figures -----------------------------------------------------------------------

    def latencies(self) -> tuple[LatencySummary, ...]:
        return self.latency.summarize(baseline=PRODUCTION, candidate=TARGET)

    def figures(self, steady_s: float = 60.0, steady_goal: float = 0.99) -> dict[str, Any]:
        wall = (
            (self.last_done - self.first_sent)
            if self.first_sent is not None and self.last_done is not None
            else 0.0
        )
        recorded = (
            (self.max_ts - self.min_ts) / 1000
            if self.min_ts is not None and self.max_ts is not None
            else 0.0
        )
        overall = next((row for row in self.latencies() if row.endpoint == ALL), None)
        return {
            "window_records": self.plan.records,
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.sent - self.succeeded,
            "blocked": self.blocked,
            "success_rate": self.succeeded / self.sent if self.sent else None,
            "error_rate": (self.sent - self.succeeded) / self.sent if self.sent else None,
            "coverage": self.sent / self.plan.records if self.plan.records else None,
            "requested_speed": self.speed,
            "achieved_speed": recorded / wall if wall > 0 and recorded > 0 else None,
            "wall_s": round(wall, 3),
            "recorded_s": round(recorded, 3),
            "throughput_per_s": self.sent / wall if wall > 0 else None,
            "time_to_first_success_s": (
                round(self.first_success - self.first_sent, 3)
                if self.first_success is not None and self.first_sent is not None
                else None
            ),
            "time_to_steady_s": self.time_to_steady(steady_s, steady_goal),
            "steady_s": steady_s,
            "steady_goal": steady_goal,
            "latency": {side: vars_of(q) for side, q in (overall.sides.items() if overall else ())},
            "latency_ratio": dict(overall.ratios) if overall else {},
        }

    def time_to_steady(self, steady_s: float, goal: float) -> float | None:
        """Seconds from the first request to the start of ``steady_s`` seconds in which
        every second with requests succeeded at ``goal`` or better."""
        if not self.per_second:
            return None
        last = max(self.per_second)
        need = max(1, round(steady_s))
        start: int | None = None
        for second in range(last + 1):
            sent, ok = self.per_second.get(second, (0, 0))
            good = not sent or ok / sent >= goal
            if not good:
                start = None
                continue
            if start is None:
                start = second
            if second - start + 1 >= need:
                return float(start)
        return None

    def throughput(self) -> list[tuple[int, int]]:
        """(second since the first request, requests sent in it)."""
        return sorted((s, v[0]) for s, v in self.per_second.items())

    def original_shape(self) -> list[tuple[float, int]]:
        """The recorded traffic per second, on the replay's time axis at the requested speed
        (at max, the recorded axis)."""
        if not self.plan.times:
            return []
        first = self.plan.times[0]
        factor = self.speed or 1.0
        counts: Counter[int] = Counter(int((ts - first) / 1000) for ts in self.plan.times)
        return [(second / factor, n) for second, n in sorted(counts.items())]


def vars_of(q: Any) -> dict[str, float]:
    return {"count": q.count, "p50": q.p50, "p95": q.p95, "p99": q.p99}
