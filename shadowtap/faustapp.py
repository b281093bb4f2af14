"""What every shadowtap Faust worker shares: how its app reaches the broker, how it runs.

Two workers are Faust apps, ``shadowtap process`` (shadowtap.processors.app) and ``shadowtap
diff serve`` (shadowtap.diff.worker). Both reach the cluster with the one ``[kafka]``
security (shadowtap.kafka_security), keep their tables in memory with a changelog topic
(recovered at start and after a rebalance), run without Faust's web server (each serves its
own Prometheus metrics), and run as a Faust Worker that neither takes over stdout nor turns
the root logger to DEBUG (shadowtap.faust_internals.quiet_worker)::

    app = faust.App(group, datadir=tmp, **app_options(settings, partitions), ...)
    return run_app(app, loglevel="info")        # blocks until SIGTERM/SIGINT; the exit code
"""

from __future__ import annotations

from typing import Any

from shadowtap.config import Settings


def app_options(settings: Settings, partitions: int) -> dict[str, Any]:
    """``faust.App`` keyword arguments for the broker, security, store and topics."""
    from shadowtap.kafka_security import Security

    compression = settings.kafka.compression
    return {
        "broker": [
            f"kafka://{h.strip()}" for h in settings.kafka.bootstrap.split(",") if h.strip()
        ],
        **Security.of(settings.kafka).faust(),  # broker_credentials: TLS, SASL
        "store": "memory://",
        "web_enabled": False,
        "topic_partitions": partitions,
        "topic_replication_factor": settings.topics.replication_factor,
        "producer_compression_type": None if compression == "none" else compression,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
    }


def run_app(app: Any, *, loglevel: str = "info") -> int:
    """Run ``app`` in a Faust Worker until SIGINT/SIGTERM; return the exit code."""
    import faust

    from shadowtap import faust_internals

    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    faust_internals.quiet_worker(worker)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    return 0
