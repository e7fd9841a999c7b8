"""Prometheus metrics of a worker process, served on ``OTP_WORKER_METRICS_PORT`` when it is set.

Labels hold only bounded values (vendor names from the configuration, outcomes, events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config.metrics import process_registry
from dispatcher.metrics import receipt_latency

REGISTRY = process_registry()
SCRAPE_TIMEOUT = 1.0
"""Seconds a scrape waits for the breakers' states from Redis before it leaves ``otp_circuit_open`` out."""

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "otp_vendor_attempts", "Vendor calls by vendor and outcome", ["vendor", "outcome"], registry=REGISTRY
)
SKIPS = Counter(
    "otp_vendor_skips",
    "Vendors passed over without a call (CIRCUIT_OPEN, CANNOT_HONOUR, WORKER_LOST), by vendor and reason",
    ["vendor", "reason"],
    registry=REGISTRY,
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
STEP_ADVANCES = Counter(
    "otp_workflow_step_advances",
    "Workflow steps that gave way to the next, by reason (DEADLINE, UNDELIVERED, FAILED)",
    ["reason"],
    registry=REGISTRY,
)
RECEIPT_POLLS = Counter(
    "otp_receipt_polls",
    "Vendor status endpoints polled at a step's deadline (no receipt by then), by vendor and what the poll said "
    "(DELIVERED, UNDELIVERED, NONE: no evidence, ERROR: no answer)",
    ["vendor", "receipt"],
    registry=REGISTRY,
)
RECEIPT_LATENCY = receipt_latency(REGISTRY)
FAILOVERS = Counter("otp_failovers", "Sends that left a vendor for the next one", ["vendor"], registry=REGISTRY)
ROUTE_SENDS = Counter(
    "otp_route_sends",
    "Attempts a vendor accepted, by vendor, channel and the number's country (an E.164 prefix of "
    "OTP_METRICS_COUNTRIES, or other): what conversions and receipts are rates of",
    ["vendor", "channel", "country"],
    registry=REGISTRY,
)
ROUTE_RECEIPTS = Counter(
    "otp_route_receipts",
    "Receipts with evidence that came before their attempt was logged, counted by the worker that logged it (the API "
    "counts the others), by vendor, channel, country and what they said (DELIVERED, UNDELIVERED)",
    ["vendor", "channel", "country", "receipt"],
    registry=REGISTRY,
)
ROUTING_DECISIONS = Counter(
    "otp_routing_decisions",
    "Sends routed, by the route's policy, the number's country, the channel, the vendor that leads and why it leads: "
    "ranked (by the policy: the chain's order, a weight, a posterior's draw), explored (exploration or the floor), "
    "pinned (an operator), previous (it took the previous send of a resend)",
    ["policy", "country", "channel", "vendor", "why"],
    registry=REGISTRY,
)
EXPIRED_UNCONVERTED = Counter(
    "otp_expired_unconverted",
    "Accepted attempts of OTPs that expired unverified, by vendor, channel and country, counted by the sweeping "
    "worker once per OTP",
    ["vendor", "channel", "country"],
    registry=REGISTRY,
)


class CircuitStates(Collector):
    """``otp_circuit_open{vendor}``: 1 while the vendor's shared breaker (in Redis) is open or half-open, read at
    each scrape, so the gauge follows the breaker even when nothing calls that vendor."""

    def __init__(self) -> None:
        self._read: Callable[[], dict[str, bool]] | None = None

    def read_from(self, read: Callable[[], dict[str, bool]]) -> None:
        """Where a scrape reads each vendor's state: a call from the metrics thread, bounded in time."""
        self._read = read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "otp_circuit_open", "1 while the vendor's circuit is open or half-open (read at scrape)", labels=["vendor"]
        )
        if self._read is not None:
            try:
                states = self._read()
            except Exception as exc:  # a scrape must still answer while Redis is away: the gauge is left out
                log.warning("circuit states not read for metrics (%s)", type(exc).__name__)
                states = {}
            for vendor, is_open in sorted(states.items()):
                family.add_metric([vendor], float(is_open))
        yield family


CIRCUIT_OPEN = CircuitStates()
REGISTRY.register(CIRCUIT_OPEN)
FINISHED = Counter("otp_sends_finished", "Sends that reached their final outcome", ["event"], registry=REGISTRY)


def serve(port: int, host: str) -> None:
    """Serve this process's metrics over HTTP from a background thread."""
    start_http_server(port, addr=host, registry=REGISTRY)
