"""Prometheus metrics of the producer side, served by the API at ``/metrics``.

Labels hold only bounded values (statuses, error codes, queue names, route patterns): never an id or a number.
A scrape never fails because Redis is away: the queue depth then reads NaN and ``otp_store_up`` 0.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    "otp_queue_depth",
    "Jobs waiting in a Celery queue, read at each scrape (NaN: unknown)",
    ["queue"],
    registry=REGISTRY,
)
SENDS_PENDING = Gauge(
    "otp_sends_pending",
    "OTPs whose send is not final yet (queued, in delivery, or awaiting a retry)",
    registry=REGISTRY,
)
SENDS_OVERDUE = Gauge(
    "otp_sends_overdue", "Pending OTPs that no worker took by their due time (lost or stuck jobs)", registry=REGISTRY
)
STORE_UP = Gauge("otp_store_up", "1 if Redis answered this scrape's queue-depth read, else 0", registry=REGISTRY)
HTTP_REQUESTS = Counter(
    "otp_http_requests",
    "API requests by route pattern, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "otp_http_request_duration_seconds",
    "Time to answer an API request, by route pattern and method",
    ["route", "method"],
    buckets=(0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
RECEIPTS = Counter(
    "otp_receipts",
    "Delivery receipts received, by vendor, what they said (DELIVERED, UNDELIVERED, NONE) and what they did "
    "(RECORDED, DUPLICATE, EARLY, GONE, INVALID)",
    ["vendor", "receipt", "kind"],
    registry=REGISTRY,
)
STEP_ADVANCES = Counter(
    "otp_workflow_step_advances",
    "Workflow steps that gave way to the next, by reason (UNDELIVERED: on a receipt, at the API)",
    ["reason"],
    registry=REGISTRY,
)


def receipt_latency(registry: CollectorRegistry) -> Histogram:
    """``otp_receipt_latency_seconds{vendor, channel}``: the API observes the receipts vendors post, each worker
    those its deadlines poll; the two sum to every attempt's first receipt with evidence (what step deadlines
    are tuned from: README, "Workflows")."""
    return Histogram(
        "otp_receipt_latency_seconds",
        "From a vendor accepting a message to its first receipt with evidence (posted to the API, or polled by a "
        "worker at a step's deadline), by vendor and channel",
        ["vendor", "channel"],
        buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300, 600),
        registry=registry,
    )


RECEIPT_LATENCY = receipt_latency(REGISTRY)
OTPS_BY_COUNTRY = Counter(
    "otp_accepted_by_country",
    "OTPs accepted (resends not counted), by the number's country (an E.164 prefix of OTP_METRICS_COUNTRIES, or "
    "other): what conversions by country are a rate of",
    ["country"],
    registry=REGISTRY,
)
CONVERSIONS = Counter(
    "otp_conversions",
    "OTPs verified, by the vendor and channel of the attempt credited and the number's country (an E.164 prefix of "
    "OTP_METRICS_COUNTRIES, or other); vendor and channel are none when no attempt could be credited",
    ["vendor", "channel", "country"],
    registry=REGISTRY,
)
SEND_TO_VERIFY = Histogram(
    "otp_send_to_verify_seconds",
    "From the vendor accepting the credited attempt to the code's approval, by vendor",
    ["vendor"],
    buckets=(5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
    registry=REGISTRY,
)
ROUTE_RECEIPTS = Counter(
    "otp_route_receipts",
    "First receipts with evidence for their attempt, by the attempt's vendor, channel and country (an E.164 prefix of "
    "OTP_METRICS_COUNTRIES, or other) and what they said (DELIVERED, UNDELIVERED): over otp_route_sends, the receipt "
    "rate. The API counts those it records; one that came before its attempt was logged, the worker that logged it",
    ["vendor", "channel", "country", "receipt"],
    registry=REGISTRY,
)
