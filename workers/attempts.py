"""The attempt log of a send: each attempt built, logged and counted, and a failed send's reason told from it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from dispatcher.schemas import Attempt, AttemptOutcome, RoutingReason
from dispatcher.store import DeliveryState
from vendors import OutcomeUnknown, ProviderError, Rejected, VendorUnavailable
from workers.metrics import ATTEMPTS, LATENCY, SKIPS

CIRCUIT_OPEN = "CIRCUIT_OPEN"
CANNOT_HONOUR = "CANNOT_HONOUR"
WORKER_LOST = "WORKER_LOST"
PASS_OVERS = frozenset({CIRCUIT_OPEN, CANNOT_HONOUR, WORKER_LOST})
"""Error codes of the attempts logged for a vendor passed over without a call."""

log = logging.getLogger(__name__)


def attempt_of(
    state: DeliveryState,
    vendor: str,
    started: float,
    outcome: AttemptOutcome,
    error_code: str | None,
    routing: RoutingReason,
) -> Attempt:
    """One attempt of the OTP's current send at ``vendor``, begun at ``started`` and over now; ``routing``: why
    the route tried that vendor there."""
    return Attempt(
        send_number=state.send_seq,
        step=state.step if state.workflow else None,
        channel=state.spec.channel if state.workflow else None,
        vendor=vendor,
        started_at=datetime.fromtimestamp(started, tz=UTC),
        latency_ms=round((time.time() - started) * 1000, 1),
        outcome=outcome,
        error_code=error_code,
        routing=routing,
    )


def failure_reason(attempts: Sequence[Attempt], why_not: Mapping[str, str]) -> str:
    """Why a send failed, from its attempts: each vendor, in the order first tried, with its error codes in
    order (``x3`` for a code repeated); ``why_not`` says why a vendor cannot honour the OTP (``CANNOT_HONOUR``).

    >>> failure_reason(attempts, {})  # doctest: +SKIP
    'every vendor of the route failed: d7: HTTP_503 x3; octopush: OCTOPUSH_103; messagecentral: MC_500'
    """
    if not attempts:
        return "no enabled vendor serves this number"
    by_vendor: dict[str, list[tuple[str, int]]] = {}
    for attempt in attempts:
        code = attempt.error_code or attempt.outcome.value
        runs = by_vendor.setdefault(attempt.vendor, [])
        if runs and runs[-1][0] == code:
            runs[-1] = (code, runs[-1][1] + 1)
        else:
            runs.append((code, 1))
    parts = []
    for vendor, runs in by_vendor.items():
        shown = []
        for code, count in runs:
            detail = f" ({why_not[vendor]})" if code == CANNOT_HONOUR and vendor in why_not else ""
            shown.append(f"{code}{detail}" + (f" x{count}" if count > 1 else ""))
        parts.append(f"{vendor}: " + ", ".join(shown))
    if all(attempt.error_code == CANNOT_HONOUR for attempt in attempts):
        return "no vendor of the route can honour this OTP: " + "; ".join(parts)
    return "every vendor of the route failed: " + "; ".join(parts)


def say(otp_id: str, attempt: Attempt) -> None:
    """Log and count one attempt: a vendor call (its outcome and latency), or a vendor passed over (a skip)."""
    if attempt.error_code in PASS_OVERS:
        SKIPS.labels(attempt.vendor, attempt.error_code).inc()
    else:
        ATTEMPTS.labels(attempt.vendor, attempt.outcome.value).inc()
        LATENCY.labels(attempt.vendor).observe(attempt.latency_ms / 1000)
    fields = {
        "otp_id": otp_id,
        "vendor": attempt.vendor,
        "outcome": attempt.outcome.value,
        "latency_ms": attempt.latency_ms,
        "error_code": attempt.error_code,
    }
    log.info(
        "otp %s via %s: %s %s in %.0f ms",
        otp_id,
        attempt.vendor,
        attempt.outcome,
        attempt.error_code or "",
        attempt.latency_ms,
        extra=fields,
    )


def outcome_of(exc: ProviderError) -> AttemptOutcome:
    """The attempt outcome a vendor's error stands for."""
    if isinstance(exc, Rejected):
        return AttemptOutcome.REJECTED
    if isinstance(exc, VendorUnavailable):
        return AttemptOutcome.VENDOR_UNAVAILABLE
    if isinstance(exc, OutcomeUnknown):
        return AttemptOutcome.OUTCOME_UNKNOWN
    return AttemptOutcome.TEMPORARY_ERROR
