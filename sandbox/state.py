"""What the sandbox remembers while it runs: the inbox, the faults in force and the calls received."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

VENDORS = ("d7", "octopush", "messagecentral", "console")
Garbage = Literal["invalid_json", "html", "empty", "wrong_content_type"]


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


@dataclass
class Message:
    vendor: str
    recipient: str
    text: str
    code: str
    reference: str
    sent_at: str = field(default_factory=lambda: datetime.now(tz=UTC).isoformat())


@dataclass
class SandboxState:
    inbox: dict[str, list[Message]] = field(default_factory=dict)
    """Every message each number received, oldest first, as a phone keeps them."""
    faults: dict[str, Faults] = field(default_factory=lambda: {vendor: Faults() for vendor in VENDORS})
    calls: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def deliver(self, message: Message) -> None:
        self.inbox.setdefault(message.recipient, []).append(message)

    def reset(self) -> None:
        self.inbox.clear()
        self.faults = {vendor: Faults() for vendor in VENDORS}
        self.calls.clear()


STATE = web.AppKey("sandbox_state", SandboxState)
