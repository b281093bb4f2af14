"""shadowtap: mirror production HTTP traffic to staging, shadow and DR targets via Kafka."""

from __future__ import annotations

__version__ = "0.1.0"
