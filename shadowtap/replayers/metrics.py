"""Prometheus metrics of a replayer worker, served on ``--metrics-port`` at ``/metrics``.

- ``shadowtap_replayer_delivered_total{target,status}`` (status class: 2xx, 3xx, 4xx, 5xx)
- ``shadowtap_replayer_failed_total{target,reason}`` (connect, timeout, disconnected,
  protocol, status-503 …, decode reasons such as not-json; every one went to the DLQ)
- ``shadowtap_replayer_skipped_total{target,reason}`` (denied, not-allowed, incomplete)
- ``shadowtap_replayer_retries_total{target,reason}``
- ``shadowtap_replayer_latency_seconds{target}`` (histogram of successful attempts)
- ``shadowtap_replayer_in_flight{target}``, ``shadowtap_replayer_buffered{target}``
- ``shadowtap_replayer_lag{topic,partition}`` (from librdkafka statistics)
- ``shadowtap_replayer_commits_total``
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The replayer's series in their own registry (tests run several workers in a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.delivered = Counter(
            "shadowtap_replayer_delivered",
            "Requests the target answered",
            ["target", "status"],
            registry=r,
        )
        self.failed = Counter(
            "shadowtap_replayer_failed",
            "Records sent to the DLQ",
            ["target", "reason"],
            registry=r,
        )
        self.skipped = Counter(
            "shadowtap_replayer_skipped",
            "Requests not sent by policy",
            ["target", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "shadowtap_replayer_retries", "Extra attempts", ["target", "reason"], registry=r
        )
        self.latency = Histogram(
            "shadowtap_replayer_latency_seconds",
            "Target response time per successful attempt",
            ["target"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.in_flight = Gauge(
            "shadowtap_replayer_in_flight", "Requests awaiting an answer", ["target"], registry=r
        )
        self.buffered = Gauge(
            "shadowtap_replayer_buffered", "Records read and not yet sent", ["target"], registry=r
        )
        self.lag = Gauge(
            "shadowtap_replayer_lag",
            "Records behind the log end",
            ["topic", "partition"],
            registry=r,
        )
        self.commits = Counter("shadowtap_replayer_commits", "Offset commits", registry=r)

    def serve(self, port: int) -> WSGIServer:
        """Serve /metrics on ``port`` (all interfaces, for the scraper); return the server."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, registry=self.registry)
        return server
