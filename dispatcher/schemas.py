"""Bodies that cross a boundary: D7's request and response shapes, and the statuses they carry.

Requests accept what D7 clients send: numbers as strings (``"expiry": "600"``) and ``null`` for an
optional field, meaning its default. Defaults that come from settings stay ``None`` here and are
filled in by the service, in one place.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from config import OtpType
from vendors import phone

E164 = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(lambda text: phone.parse(text).e164)]
"""A valid international number, as people type it ("+33 6 12 34 56 78"), kept in E.164 ("+33612345678")."""
OtpId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[0-9a-f-]+$")]
OtpCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z]{4,12}$")]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DEFAULT_ORIGINATOR = "Verify"
CODE_PLACEHOLDER = "{}"


class VerifyStatus(StrEnum):
    APPROVED = "APPROVED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    ALREADY_VERIFIED = "ALREADY_VERIFIED"


class OtpStatus(StrEnum):
    OPEN = "OPEN"
    VERIFIED = "VERIFIED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class AttemptOutcome(StrEnum):
    DELIVERED = "DELIVERED"
    TEMPORARY_ERROR = "TEMPORARY_ERROR"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    VENDOR_UNAVAILABLE = "VENDOR_UNAVAILABLE"
    REJECTED = "REJECTED"


class ReceiptStatus(StrEnum):
    """What the vendor's delivery receipt said about the handset, for an attempt the vendor accepted."""

    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    NONE = "NONE"
    """No receipt yet, or one that says nothing (an unknown delivery); a vendor without receipts stays here."""


class SendJob(NamedTuple):
    """One OTP in a send job's arguments: its id and the job number the store expects (never a number or a code)."""

    otp_id: str
    job_seq: int


class DeadlineJob(NamedTuple):
    """A workflow step's deadline job's arguments: the OTP, its step and that step's send (ids only)."""

    otp_id: str
    step: int
    send_seq: int


class StepEnd(StrEnum):
    """Why a workflow step ended (the report's ``outcome`` of a step that gave way, and the metric's reason)."""

    DEADLINE = "DEADLINE"
    """No delivered receipt came before its deadline."""
    UNDELIVERED = "UNDELIVERED"
    """Its receipt said the message was not delivered."""
    FAILED = "FAILED"
    """No vendor of the step took the message (none could honour it, or every one failed)."""
    RESEND = "RESEND"
    """A resend started the workflow again."""
    DELIVERED = "DELIVERED"
    """Its delivered receipt ended the workflow."""


class PostbackEvent(StrEnum):
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


def _one_of(*choices: str) -> BeforeValidator:
    """Accept ``choices`` in any letter case ("sms" is "SMS"), as D7's examples and clients vary."""
    by_lower = {choice.lower(): choice for choice in choices}
    return BeforeValidator(lambda value: by_lower.get(value.lower(), value) if isinstance(value, str) else value)


Whole = Annotated[int, BeforeValidator(_not_a_boolean)]
"""A whole number, also as a string of digits (D7 clients send both); never a JSON boolean, which pydantic would
otherwise read as 1."""
Channel = Annotated[Literal["SMS", "WhatsApp"], _one_of("SMS", "WhatsApp")]
DataCoding = Annotated[Literal["text", "unicode", "auto"], _one_of("text", "unicode", "auto")]
CodeType = Annotated[OtpType, _one_of("numeric", "alpha", "alphanumeric")]


class _D7Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class SendOtpRequest(_D7Request):
    recipient: E164
    originator: str = Field(DEFAULT_ORIGINATOR, min_length=1, max_length=15)
    content: str | None = Field(None, min_length=2, max_length=1000)
    template_id: Whole | None = Field(None, ge=1)
    channel: Channel = "SMS"
    expiry: Whole | None = Field(None, ge=1, le=86_400)
    data_coding: DataCoding = "text"
    retry_delay: Whole | None = Field(None, ge=0, le=86_400)
    retry_count: Whole | None = Field(None, ge=0, le=100)
    otp_code_length: Whole | None = Field(None, ge=4, le=12)
    otp_type: CodeType | None = None
    success_url: AnyHttpUrl | None = None
    failure_url: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _content_or_template(self) -> SendOtpRequest:
        if self.template_id is None and self.content is None:
            raise ValueError("content is required unless template_id is given")
        if self.content is not None and CODE_PLACEHOLDER not in self.content:
            raise ValueError("content must contain {} where the code goes")
        return self


class ResendOtpRequest(_D7Request):
    otp_id: OtpId


class VerifyOtpRequest(_D7Request):
    otp_id: OtpId
    otp_code: OtpCode


class SendOtpResponse(BaseModel):
    otp_id: str
    status: OtpStatus
    expiry: int


class ResendOtpResponse(SendOtpResponse):
    resend_count: int


class VerifyOtpResponse(BaseModel):
    status: VerifyStatus


class RoutingReason(BaseModel):
    """Why a vendor was tried where it was: the route's policy, its rank and score, and what overrode them."""

    policy: str = Field(description="ordered, weighted or adaptive (the route's policy), or step (a workflow step's)")
    rank: int = Field(description="its place in the order the send tried its vendors (1: first)")
    score: float | None = Field(
        None,
        description="adaptive: the draw from the vendor's Beta posterior that ranked it; weighted: its weight's share",
    )
    successes: int | None = Field(None, description="adaptive: conversions of its evidence (country, channel)")
    failures: int | None = Field(None, description="adaptive: failures of its evidence (country, channel)")
    explored: bool = Field(
        False, description="it leads because the draw explored (a random vendor) or it is short of samples (floor)"
    )
    pinned: bool = Field(False, description="an operator pinned it for the country (and channel)")
    banned: list[str] = Field([], description="vendors left out of the route by an operator's ban")
    reason: str = Field(description="the decision in words")


class Attempt(BaseModel):
    """One call to one vendor for one send (the first send is number 1, each resend adds one)."""

    send_number: int
    vendor: str
    started_at: datetime
    latency_ms: float
    outcome: AttemptOutcome
    error_code: str | None = None
    step: int | None = Field(None, description="the workflow step the send belongs to (from 0)")
    channel: str | None = Field(None, description="the channel it went out on (a workflow step's)")
    receipt: ReceiptStatus | None = Field(
        None, description="for an attempt the vendor accepted: the handset outcome its receipt gave (NONE: none yet)"
    )
    receipt_status: str | None = Field(None, description="the vendor's own word in the receipt (e.g. NOT_DELIVERED)")
    receipt_reason: str | None = Field(None, description="why it was not delivered, in the vendor's words")
    receipt_at: datetime | None = Field(None, description="when the receipt reached the dispatcher")
    receipt_latency_ms: float | None = Field(None, description="from the vendor accepting the message to the receipt")
    routing: RoutingReason | None = Field(None, description="why this vendor was tried, and in that place")


class StepReport(BaseModel):
    """One send of a workflow: its step, channel, vendor, receipt and how it ended."""

    send_number: int
    step: int
    channel: str | None
    vendor: str | None = Field(description="the vendor that took the message (none: no vendor did)")
    receipt: ReceiptStatus | None
    outcome: str = Field(
        description="DELIVERED (its receipt), DEADLINE, UNDELIVERED, FAILED or RESEND (it gave way to the next "
        "send), VERIFIED, or for the current send: AWAITING_RECEIPT, SENDING, FAILED, EXPIRED"
    )


class WorkflowReport(BaseModel):
    name: str
    step: int = Field(description="the current step (from 0)")
    channel_change: bool = Field(description="the workflow may send on another channel than send-otp asked for")
    channels: list[str]
    steps: list[StepReport]


class OtpReport(BaseModel):
    otp_id: str
    status: OtpStatus
    recipient: str = Field(description="masked: country code and last two digits")
    created_at: datetime
    expires_at: datetime
    expiry: int = Field(description="seconds left before the code expires")
    resend_count: int
    delivered_by: str | None
    failure_reason: str | None
    attempts: list[Attempt]
    converted_by: Attempt | None = Field(
        None,
        description="once VERIFIED: the attempt credited with the conversion (whose code matched, or for a code the "
        "vendor generated, the attempt of the vendor that checked it); none before, or when no attempt can be named",
    )
    workflow: WorkflowReport | None = Field(None, description="the workflow's steps, when one is configured")


class Postback(BaseModel):
    """The JSON body POSTed to ``success_url`` or ``failure_url`` once a send is final (never the code)."""

    event: PostbackEvent
    otp_id: str
    status: OtpStatus
    delivered_by: str | None
    failure_reason: str | None
    created_at: datetime
    expires_at: datetime
    sent_at: datetime
    attempts: list[Attempt]


class _Closed(BaseModel):
    """An answer whose schema forbids other fields, so one added by mistake (an echoed input) fails the API tests."""

    model_config = ConfigDict(extra="forbid")


class Liveness(_Closed):
    """``GET /healthz``: the process serves HTTP."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["ok"] = "ok"


class Readiness(_Closed):
    """``GET /readyz``: Redis, the records and the broker, answers."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["ready"] = "ready"


class ReceiptAck(_Closed):
    """A callback route's answer to a vendor: the receipt was taken (or known, late, or for an OTP gone)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["accepted"] = "accepted"


class ValidationProblem(_Closed):
    """One item of D7's 422 list: where the problem is, what it is, and its kind (never the input)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(_Closed):
    """D7's answer to a request that does not validate (422)."""

    detail: list[ValidationProblem]


class ErrorDetail(_Closed):
    code: str = Field(description="stable, e.g. RESEND_TOO_SOON")
    message: str
    otp_id: str | None = Field(None, description="OTP_IN_FLIGHT only: the OTP already open for the number")


class ErrorBody(_Closed):
    """D7's answer to every other refused request: one stable ``code`` and a message."""

    detail: ErrorDetail


StatsWindow = Literal["hour", "day"]
"""The window of the stats route: the last 60 minutes or the last 1440 (the current minute included)."""


class RouteFigures(_Closed):
    """One route's outcomes over the window (time to verify in whole seconds)."""

    vendor: str = Field(description="the vendor of the attempts (none: conversions no attempt could be credited with)")
    channel: str = Field(description="the channel they went out on")
    country: str = Field(description="the number's country: an E.164 prefix of OTP_METRICS_COUNTRIES, or other")
    sends: int = Field(description="attempts the vendor accepted")
    delivered_receipts: int = Field(description="attempts whose first receipt with evidence said DELIVERED")
    undelivered_receipts: int = Field(description="attempts whose first receipt with evidence said UNDELIVERED")
    conversions: int = Field(description="approved verifies credited to an attempt of the route")
    conversion_rate: float | None = Field(description="conversions / sends (null without sends)")
    expired_unconverted: int = Field(description="accepted attempts of OTPs whose code expired unverified")
    median_verify_seconds: float | None = Field(
        description="median of the conversions' times from the vendor accepting the attempt to the approval, in "
        "whole seconds (null without conversions)"
    )


class RouteStatsReport(_Closed):
    """``GET /stats/v1/routes``: every route (vendor, channel, country) with an outcome in the window."""

    window: StatsWindow
    since: datetime = Field(description="the start of the window's first minute")
    until: datetime = Field(description="when the figures were read")
    routes: list[RouteFigures]


RoutingCountry = Annotated[str, StringConstraints(pattern=r"^(\+[1-9][0-9]{0,5}|other)$")]
"""A country as routing scores and overrides name it: a prefix of ``OTP_METRICS_COUNTRIES``, or ``other``."""
VendorName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
AnyChannel = Annotated[Literal["SMS", "WhatsApp", "voice"], _one_of("SMS", "WhatsApp", "voice")]
"""A channel a send or a workflow step goes out on."""


class OverrideRequest(_Closed):
    """``PUT /routing/v1/overrides/{country}/{vendor}``: pin or ban the vendor for the country."""

    action: Literal["PIN", "BAN"] = Field(description="PIN: it leads every send; BAN: it is never tried")
    channel: AnyChannel | None = Field(None, description="only sends on this channel (default: every channel)")


class RoutingOverride(_Closed):
    """One operator's override in force."""

    country: str
    channel: str = Field(description="a channel, or * for every channel")
    vendor: str
    action: Literal["PIN", "BAN"]


class RoutingOverrides(_Closed):
    """``GET /routing/v1/overrides``: every override in force (every worker honours a change within about 1 s)."""

    overrides: list[RoutingOverride]
