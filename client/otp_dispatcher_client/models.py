"""What the API answers, as frozen dataclasses, and the options of a send (D7's send-otp fields).

Plain dataclasses and enums rather than pydantic: the client reads a few small, documented bodies, and
other services should not have to share a pydantic version with it. Fields the API adds later are
ignored, so an older client keeps working against a newer dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, TypedDict


class OtpStatus(StrEnum):
    """Where an OTP stands."""

    OPEN = "OPEN"
    VERIFIED = "VERIFIED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class VerifyStatus(StrEnum):
    """The answer to a code: a wrong code and an unknown otp_id are both ``FAILED``."""

    APPROVED = "APPROVED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    ALREADY_VERIFIED = "ALREADY_VERIFIED"


class AttemptOutcome(StrEnum):
    """How one call to one vendor ended."""

    DELIVERED = "DELIVERED"
    TEMPORARY_ERROR = "TEMPORARY_ERROR"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    VENDOR_UNAVAILABLE = "VENDOR_UNAVAILABLE"
    REJECTED = "REJECTED"


class ReceiptStatus(StrEnum):
    """What the vendor's delivery receipt said of the handset, for an attempt the vendor accepted."""

    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    NONE = "NONE"
    """No receipt yet, or one that says nothing; a vendor without receipts stays here."""


StatsWindow = Literal["hour", "day"]
"""The window of the stats: the last 60 minutes or the last 1440 (the current minute included)."""


class SendOptions(TypedDict, total=False):
    """D7's optional send-otp fields; one left out (or None) takes the dispatcher's default."""

    template_id: int | None
    originator: str | None
    channel: Literal["SMS", "WhatsApp"] | None
    expiry: int | None
    data_coding: Literal["text", "unicode", "auto"] | None
    retry_delay: int | None
    retry_count: int | None
    otp_code_length: int | None
    otp_type: Literal["numeric", "alpha", "alphanumeric"] | None
    success_url: str | None
    failure_url: str | None


@dataclass(frozen=True)
class SentOtp:
    """An accepted send or resend: its delivery is queued; ``expiry`` is seconds until the code expires."""

    otp_id: str
    status: OtpStatus
    expiry: int
    resend_count: int = 0


@dataclass(frozen=True)
class RoutingReason:
    """Why a vendor was tried where it was: the route's ``policy`` (``ordered``, ``weighted``, ``adaptive``, or
    ``step`` for a workflow step's own vendor), its ``rank`` (1: first), its ``score`` (adaptive: its draw; weighted:
    its weight's share), its evidence, whether it was explored, pinned, or others banned, and ``reason`` in words."""

    policy: str
    rank: int
    score: float | None
    successes: int | None
    failures: int | None
    explored: bool
    pinned: bool
    banned: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Attempt:
    """One call to one vendor for one send (the first send is number 1, each resend adds one); ``step`` and
    ``channel`` for a send of a workflow; the ``receipt`` fields once the vendor accepted the message."""

    send_number: int
    vendor: str
    started_at: datetime
    latency_ms: float
    outcome: AttemptOutcome
    error_code: str | None
    step: int | None = None
    channel: str | None = None
    receipt: ReceiptStatus | None = None
    receipt_status: str | None = None
    """The vendor's own word in its receipt (e.g. ``NOT_DELIVERED``)."""
    receipt_reason: str | None = None
    receipt_at: datetime | None = None
    receipt_latency_ms: float | None = None
    """From the vendor accepting the message to its receipt."""
    routing: RoutingReason | None = None


@dataclass(frozen=True)
class WorkflowStep:
    """One send of a workflow: its step (from 0), channel, vendor, receipt and how it ended (``DELIVERED``,
    ``DEADLINE``, ``UNDELIVERED``, ``FAILED``, ``RESEND``, ``VERIFIED``; for the current send also
    ``AWAITING_RECEIPT``, ``SENDING``, ``EXPIRED``)."""

    send_number: int
    step: int
    channel: str | None
    vendor: str | None
    receipt: ReceiptStatus | None
    outcome: str


@dataclass(frozen=True)
class Workflow:
    """The workflow an OTP follows: its current step, its channels, whether it may change channel, its sends."""

    name: str
    step: int
    channel_change: bool
    channels: tuple[str, ...]
    steps: tuple[WorkflowStep, ...]


@dataclass(frozen=True)
class OtpReport:
    """An OTP's state and every delivery attempt; ``recipient`` is masked (``+3361****78``)."""

    otp_id: str
    status: OtpStatus
    recipient: str
    created_at: datetime
    expires_at: datetime
    expiry: int
    resend_count: int
    delivered_by: str | None
    failure_reason: str | None
    attempts: tuple[Attempt, ...]
    converted_by: Attempt | None = None
    """Once VERIFIED: the attempt credited with the conversion (whose code matched)."""
    workflow: Workflow | None = None


@dataclass(frozen=True)
class RouteFigures:
    """One route's (vendor, channel, country) outcomes over the window; ``country`` is an E.164 prefix the dispatcher
    names (``OTP_METRICS_COUNTRIES``) or ``other``; times to verify are whole seconds."""

    vendor: str
    channel: str
    country: str
    sends: int
    delivered_receipts: int
    undelivered_receipts: int
    conversions: int
    conversion_rate: float | None
    expired_unconverted: int
    median_verify_seconds: float | None


@dataclass(frozen=True)
class RouteStatsReport:
    """Every route with an outcome in the window, from ``since`` (the start of its first minute) to ``until``."""

    window: StatsWindow
    since: datetime
    until: datetime
    routes: tuple[RouteFigures, ...]
