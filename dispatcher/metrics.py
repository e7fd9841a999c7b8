"""Prometheus metrics of the producer side, served by the API at ``/metrics``.

Labels hold only bounded values (statuses, error codes, queue names): never an id or a number.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from config.metrics import process_registry

REGISTRY = process_registry()

SENDS_ACCEPTED = Counter(
    "otp_sends_accepted", "OTPs accepted and queued for delivery (resends included)", ["kind"], registry=REGISTRY
)
VERIFICATIONS = Counter("otp_verifications", "Verify outcomes", ["status"], registry=REGISTRY)
REFUSALS = Counter(
    "otp_requests_refused",
    "Sends and resends refused by a guard (rate limits, pumping guard)",
    ["code"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "otp_queue_depth", "Jobs waiting in a Celery queue, read at each scrape", ["queue"], registry=REGISTRY
)
