"""Verification against OTP records: one code evaluated atomically, within the OTP's attempt budget.

A code the dispatcher generated is checked here, against the keyed hashes the record keeps (compared in
constant time inside ``lua/verify.lua``); a code a vendor generated is checked by that vendor, between
a reserved attempt (``verify``) and its outcome (``settle_vendor_verify`` or ``refund_verify``).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatcher.constants import record_key
from dispatcher.schemas import VerifyStatus
from dispatcher.sealing import Sealer
from dispatcher.store.connection import DUE_GRACE, Connected, redis_errors
from dispatcher.store.scripts import load


@dataclass(frozen=True, slots=True)
class VerifyTicket:
    """A decided status, or the vendor to ask (an attempt is reserved for it)."""

    decided: VerifyStatus | None
    vendor: str = ""
    reference: str = ""


class VerificationOperations(Connected):
    """Verifies codes: exactly one of many concurrent right codes is APPROVED, at most the budget is evaluated."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._verify = load(redis, "verify")
        self._verify_settle = load(redis, "verify_settle")
        self._verify_refund = load(redis, "verify_refund")

    async def verify(self, otp_id: str, code_digest: str, now: float) -> VerifyTicket:
        """Evaluate one code, atomically and within the OTP's attempt budget.

        The digest is compared in constant time with the keyed hash of every code the dispatcher
        generated for this OTP. If none matches and the latest delivery was by a vendor that checks
        its own codes, one attempt is reserved and that vendor's reference returned: the caller asks
        the vendor, then calls ``settle_vendor_verify``. An unknown id fails like a wrong code.
        """
        async with redis_errors():
            answer = await self._verify(keys=[record_key(otp_id)], args=[now, code_digest])
        if answer[0] == "VENDOR":
            return VerifyTicket(decided=None, vendor=answer[1], reference=answer[2])
        return VerifyTicket(decided=VerifyStatus(answer[0]))

    async def settle_vendor_verify(self, otp_id: str, approved: bool, now: float) -> VerifyStatus:
        """Record the vendor's answer: of all concurrent approved codes exactly one is APPROVED."""
        async with redis_errors():
            answer = await self._verify_settle(keys=[record_key(otp_id)], args=[int(approved), now])
        return VerifyStatus(answer)

    async def refund_verify(self, otp_id: str) -> None:
        """Give back an attempt whose code could not be evaluated (the vendor did not answer)."""
        async with redis_errors():
            await self._verify_refund(keys=[record_key(otp_id)])
