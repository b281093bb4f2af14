"""Prometheus metrics of the processor, served on ``--web-port`` at ``/metrics``.

- ``shadowtap_processor_records_in_total``
- ``shadowtap_processor_records_out_total{topic}``
- ``shadowtap_processor_dropped_total{reason}`` (health-path, probe-agent, sampled-out,
  rate-capped, duplicate, unrouted)
- ``shadowtap_processor_dlq_total{reason}``
- ``shadowtap_processor_entities_scrubbed_total{entity}``
- ``shadowtap_processor_stage_seconds{stage}`` (histogram)
- ``shadowtap_processor_holes_read_back_total``: records Faust's fetcher skipped that were
  read back (shadowtap.processors.offsets); non-zero only around rebalances
"""

from __future__ import annotations

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

    def record(self, outcome: Outcome) -> None:
        self.records_in.inc()
        if outcome.kind == "out":
            self.records_out.labels(outcome.topic).inc()
        elif outcome.kind == "drop":
            self.dropped.labels(outcome.reason).inc()
        else:
            self.dlq.labels(outcome.reason).inc()
        for entity, n in outcome.entities.items():
            self.entities.labels(entity).inc(n)
        for stage, seconds in outcome.timings.items():
            self.stage.labels(stage).observe(seconds)

    def serve(self, port: int) -> None:
        """Serve /metrics on ``port`` in a daemon thread (0: do not serve)."""
        if port:
            start_http_server(port, registry=self.registry)
