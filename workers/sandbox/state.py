"""What the sandbox remembers while it runs: the inbox, the faults in force and the calls received."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

VENDORS = ("d7", "octopush", "messagecentral", "console")


class Faults(BaseModel):
    """Faults injected into one vendor's answers until reset."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0, le=120_000)
    status: int | None = Field(None, ge=400, le=599)
    error_rate: float = Field(1.0, ge=0, le=1)
    hang: bool = False
    no_credit: bool = False
    vendor_error: int | None = None


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
    inbox: dict[str, Message] = field(default_factory=dict)
    faults: dict[str, Faults] = field(default_factory=lambda: {vendor: Faults() for vendor in VENDORS})
    calls: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def deliver(self, message: Message) -> None:
        self.inbox[message.recipient] = message

    def reset(self) -> None:
        self.inbox.clear()
        self.faults = {vendor: Faults() for vendor in VENDORS}
        self.calls.clear()


STATE = web.AppKey("sandbox_state", SandboxState)
