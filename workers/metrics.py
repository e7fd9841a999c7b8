"""Prometheus metrics of a worker process, served on ``OTP_WORKER_METRICS_PORT`` when it is set.

Labels hold only bounded values (vendor names from the configuration, outcomes, events).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from config.metrics import process_registry

REGISTRY = process_registry()

ATTEMPTS = Counter(
    "otp_vendor_attempts", "Vendor calls by vendor and outcome", ["vendor", "outcome"], registry=REGISTRY
)
LATENCY = Histogram(
    "otp_vendor_latency_seconds",
    "Duration of vendor calls",
    ["vendor"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RETRIES = Counter(
    "otp_vendor_retries", "Sends scheduled to be tried again on the same vendor", ["vendor"], registry=REGISTRY
)
FAILOVERS = Counter("otp_failovers", "Sends that left a vendor for the next one", ["vendor"], registry=REGISTRY)
CIRCUIT_OPEN = Gauge(
    "otp_circuit_open", "1 while this worker last saw the vendor's circuit open", ["vendor"], registry=REGISTRY
)
FINISHED = Counter("otp_sends_finished", "Sends that reached their final outcome", ["event"], registry=REGISTRY)


def serve(port: int, host: str) -> None:
    """Serve this process's metrics over HTTP from a background thread."""
    start_http_server(port, addr=host, registry=REGISTRY)
