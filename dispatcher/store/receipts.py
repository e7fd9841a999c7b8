"""Delivery receipts on OTP records: one receipt for one attempt is one step in Redis.

A vendor's reference is mapped to its attempt (``<otp_id> <attempt index> <send> <accepted at>``) in the same
step that logs the accepted attempt (``runs.mark_delivered``); a receipt finds its attempt through it, and its
answer says what a workflow acting on receipts needs: whether it is the first receipt for that attempt and
whether the OTP's current send is still open. A receipt that comes before its attempt is recorded (a fast
vendor) is kept ``EARLY_RECEIPT_TTL`` seconds, and the attempt takes it when it is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatcher.constants import RECORD_PREFIX, early_receipt_key, receipt_ref_key
from dispatcher.sealing import Sealer
from dispatcher.store.connection import DUE_GRACE, Connected, redis_errors
from dispatcher.store.scripts import load
from vendors.receipts import Receipt

EARLY_RECEIPT_TTL = 600
"""Seconds a receipt naming a reference no attempt has yet is kept for that attempt (then it is dropped)."""


class ReceiptKind(StrEnum):
    RECORDED = "RECORDED"
    """The first receipt with evidence for its attempt (or a NONE one, kept until evidence comes)."""
    DUPLICATE = "DUPLICATE"
    """The attempt already had its receipt: nothing changed."""
    EARLY = "EARLY"
    """No attempt names this reference yet: kept for the attempt to take when it is logged."""
    GONE = "GONE"
    """The OTP is gone (expired past its grace)."""


@dataclass(frozen=True, slots=True)
class ReceiptAnswer:
    """What one receipt did: its kind, the attempt it is for, and whether that OTP's current send is open."""

    kind: ReceiptKind
    otp_id: str = ""
    attempt: int = -1
    """The attempt's index in the OTP's attempt log (from 0)."""
    send_open: bool = False
    """The attempt is of the OTP's current send, which is still open (not verified, failed nor expired)."""
    latency_ms: float | None = None
    """From the vendor accepting the message to its (first) receipt."""
    channel: str = ""
    country: str = ""
    """The attempt's channel (the workflow step's, else send-otp's) and country, as stats count them."""

    @property
    def first(self) -> bool:
        """This receipt is the first for its attempt (a workflow acts on it; a duplicate it ignores)."""
        return self.kind is ReceiptKind.RECORDED


class ReceiptOperations(Connected):
    """Receipts, as the API's callback routes receive them."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._receipt = load(redis, "receipt")

    async def record_receipt(self, vendor: str, receipt: Receipt, now: float) -> ReceiptAnswer:
        """Record ``receipt`` from ``vendor`` against the attempt its reference names, in one step."""
        keys = [receipt_ref_key(vendor, receipt.reference), early_receipt_key(vendor, receipt.reference)]
        args: list[EncodableT] = [
            receipt.outcome.value,
            receipt.vendor_status,
            receipt.reason or "",
            now,
            RECORD_PREFIX,
            EARLY_RECEIPT_TTL,
        ]
        async with redis_errors():
            kind, otp_id, attempt, send_open, latency, _, channel, country = await self._receipt(keys=keys, args=args)
        return ReceiptAnswer(
            kind=ReceiptKind(kind),
            otp_id=str(otp_id),
            attempt=int(attempt),
            send_open=bool(int(send_open)),
            latency_ms=float(latency) if latency else None,
            channel=str(channel),
            country=str(country),
        )
