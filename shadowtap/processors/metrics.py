"""Prometheus metrics of the processor, served on ``--web-port`` at ``/metrics``.

- ``shadowtap_processor_records_in_total``
- ``shadowtap_processor_records_out_total{topic}``
- ``shadowtap_processor_dropped_total{reason}`` (health-path, probe-agent, sampled-out,
  rate-capped, duplicate, unrouted)
- ``shadowtap_processor_dlq_total{reason}``
- ``shadowtap_processor_entities_scrubbed_total{entity}``
- ``shadowtap_processor_stage_seconds{stage}`` (histogram)
- ``shadowtap_processor_holes_read_back_total``: records Faust's fetcher skipped that were
  read back (shadowtap.processors.holes); non-zero only around rebalances
- ``shadowtap_processor_send_failures_total``: batches whose output or dedup changelog the
  broker did not acknowledge, or whose scrubber process died; their records are read again
  from the committed offset
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from shadowtap.processors.pipeline import Outcome


class Metrics:
    """The processor's counters in their own registry (several apps can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "shadowtap_processor_records_in", "Records read from the captured topic", registry=r
        )
        self.records_out = Counter(
            "shadowtap_processor_records_out", "Records sent on", ["topic"], registry=r
        )
        self.dropped = Counter(
            "shadowtap_processor_dropped", "Records dropped on purpose", ["reason"], registry=r
        )
        self.dlq = Counter(
            "shadowtap_processor_dlq",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.entities = Counter(
            "shadowtap_processor_entities_scrubbed",
            "Values replaced by the scrubber",
            ["entity"],
            registry=r,
        )
        self.stage = Histogram(
            "shadowtap_processor_stage_seconds",
            "Time spent in each stage per record",
            ["stage"],
            buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0),
            registry=r,
        )

        self.holes = Counter(
            "shadowtap_processor_holes_read_back",
            "Offsets Faust did not deliver, read back by the worker",
            registry=r,
        )
        self.send_failures = Counter(
            "shadowtap_processor_send_failures",
            "Batches not finished: output refused or scrubber died (read again from the log)",
            registry=r,
        )
        self._children: dict[tuple[Any, str], Any] = {}

    def record(self, outcome: Outcome) -> None:
        self.records_in.inc()
        if outcome.kind == "out":
            self._child(self.records_out, outcome.topic or "").inc()
        elif outcome.kind == "drop":
            self._child(self.dropped, outcome.reason).inc()
        else:
            self._child(self.dlq, outcome.reason).inc()
        for entity, n in outcome.entities.items():
            self._child(self.entities, entity).inc(n)
        for stage, seconds in outcome.timings.items():
            self._child(self.stage, stage).observe(seconds)

    def _child(self, metric: Any, label: str) -> Any:
        # ``labels()`` takes a lock and builds a key on every call: ~10 calls a record
        child = self._children.get((metric, label))
        if child is None:
            child = self._children[(metric, label)] = metric.labels(label)
        return child

    def serve(self, port: int) -> None:
        """Serve /metrics on ``port`` in a daemon thread (0: do not serve)."""
        if port:
            start_http_server(port, registry=self.registry)
