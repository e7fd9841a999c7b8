"""What the sandbox remembers while it runs: the inbox, the faults in force, the calls received, the receipts
sent, the account callback URLs and the phone's settings and typing."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

VENDORS = ("d7", "octopush", "messagecentral", "console")
Garbage = Literal["invalid_json", "html", "empty", "wrong_content_type"]
DEFAULT_RECEIPT_DELAY_MS = 200.0
"""How long after a message is accepted its delivery receipt goes out, unless a fault says otherwise."""
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]


class Faults(BaseModel):
    """Faults injected into one vendor's answers until reset."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0, le=120_000)
    """Wait before the vendor does anything; a request the caller gave up on is still carried out."""
    late_answer_ms: float = Field(0, ge=0, le=120_000)
    """Wait after the vendor did its work (the code is sent) before answering."""
    status: int | None = Field(None, ge=400, le=599)
    """Answer with the vendor's error for this status; with ``garbage``, the garbage's status."""
    error_rate: float = Field(1.0, ge=0, le=1)
    hang: bool = False
    no_credit: bool = False
    vendor_error: int | None = None
    garbage: Garbage | None = None
    """Answer what no vendor documents: a truncated JSON body, an HTML error page, an empty body (all
    with ``status``, default 200, and nothing sent), or the real answer labelled ``text/plain``."""

    # Delivery faults: what becomes of a message the vendor accepted (limited to numbers starting with ``prefix``).
    receipt_delay_ms: float = Field(DEFAULT_RECEIPT_DELAY_MS, ge=0, le=600_000)
    """Wait between accepting a message and sending its receipt (other numbers than ``prefix``'s: the default)."""
    undelivered_rate: float = Field(0, ge=0, le=1)
    """Share of accepted messages that never reach the phone and get an undelivered receipt."""
    undelivered_status: str | None = Field(None, max_length=40)
    """The vendor's failure status those receipts carry (default: its generic one; see ``sandbox/RECEIPTS.md``)."""
    silent_drop_rate: float = Field(0, ge=0, le=1)
    """Share of accepted messages that never reach the phone and get no receipt at all."""
    no_receipt_rate: float = Field(0, ge=0, le=1)
    """Share of delivered messages whose receipt never comes."""
    prefix: Annotated[str, StringConstraints(pattern=r"^\+[0-9]{1,15}$")] | None = None
    """Limit the delivery faults to numbers that start with this E.164 prefix (``+33``, ``+91``)."""

    @model_validator(mode="after")
    def _shares(self) -> Self:
        if self.undelivered_rate + self.silent_drop_rate > 1:
            raise ValueError("undelivered_rate + silent_drop_rate must be at most 1")
        return self

    def applies_to(self, recipient: str) -> bool:
        """Whether the delivery faults apply to messages for ``recipient``."""
        return self.prefix is None or recipient.startswith(self.prefix)


class PhoneSettings(BaseModel):
    """The sandbox phone: it types every code delivered to an inbox into ``url`` after a human's delay."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    """Where the phone POSTs ``{"recipient", "code"}`` as JSON."""
    token: str | None = Field(None, max_length=1000)
    """Sent as ``Authorization: Bearer <token>`` when given."""
    delay_ms: tuple[float, float] = (1000.0, 5000.0)
    """The delay before typing, uniformly drawn between these bounds (milliseconds)."""

    @model_validator(mode="after")
    def _delay(self) -> Self:
        low, high = self.delay_ms
        if not 0 <= low <= high <= 600_000:
            raise ValueError("delay_ms must be [min, max] with 0 <= min <= max <= 600000")
        return self


@dataclass
class Message:
    vendor: str
    recipient: str
    text: str
    code: str
    reference: str
    channel: str = "sms"
    """How it reached the phone, in the vendor's word: ``sms``, D7's ``WhatsApp``, Octopush's ``voice_sms`` (a call
    that read the code out)."""
    sent_at: str = field(default_factory=lambda: datetime.now(tz=UTC).isoformat())


@dataclass
class ReceiptRecord:
    """One receipt the sandbox sent (or tried to send), for tests and debugging."""

    vendor: str
    message_id: str
    recipient: str
    status: str
    url: str
    at: str = field(default_factory=lambda: datetime.now(tz=UTC).isoformat())
    """When the first attempt was made."""
    attempts: int = 0
    answer_status: int | None = None
    """The callback's HTTP status at the last attempt (None: no answer)."""
    error: str | None = None
    """Why the last attempt got no answer."""
    acknowledged: bool = False
    """Whether the callback answered 2xx."""


@dataclass
class TypedCode:
    """One code the phone typed, with the answer it got."""

    vendor: str
    recipient: str
    code: str
    at: str = field(default_factory=lambda: datetime.now(tz=UTC).isoformat())
    answer_status: int | None = None
    answer: object = None
    error: str | None = None


@dataclass
class SandboxState:
    inbox: dict[str, list[Message]] = field(default_factory=dict)
    """Every message each number received, oldest first, as a phone keeps them."""
    faults: dict[str, Faults] = field(default_factory=lambda: {vendor: Faults() for vendor in VENDORS})
    calls: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    receipts: list[ReceiptRecord] = field(default_factory=list)
    callbacks: dict[str, Url] = field(default_factory=dict)
    """Account-wide callback URLs, by vendor (Octopush takes its receipt URL per account, not per send)."""
    phone: PhoneSettings | None = None
    typed: list[TypedCode] = field(default_factory=list)

    def deliver(self, message: Message) -> None:
        self.inbox.setdefault(message.recipient, []).append(message)

    def reset(self) -> None:
        """Forget everything but the account settings (the callback URLs), as a fresh sandbox would."""
        self.inbox.clear()
        self.faults = {vendor: Faults() for vendor in VENDORS}
        self.calls.clear()
        self.receipts.clear()
        self.phone = None
        self.typed.clear()


STATE = web.AppKey("sandbox_state", SandboxState)
