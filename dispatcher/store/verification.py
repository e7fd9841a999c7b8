"""Verification against OTP records: one code evaluated atomically, within the OTP's attempt budget.

A code the dispatcher generated is checked here first, against the keyed hashes the record keeps (compared in
constant time inside ``lua/verify.lua``); a code a vendor generated is checked by the vendors that sent codes they
check themselves (every step of a workflow that went to one: each of its codes stays valid), the newest first, until
one approves, between one reserved attempt (``verify``) and its outcome (``settle_vendor_verify`` or
``refund_verify``): however many vendors are asked, a wrong code costs one attempt.

A vendor check is single flight per OTP and code: the call that reserves the attempt leads it (a key,
``check_key``, marks it in flight for a little longer than the vendors asked may take, one after the other); a
concurrent call with the same code reserves nothing and is told to wait, then asks again until the leader has
settled (the OTP is verified, or the code was judged wrong), given up (refunded: the next caller leads) or vanished
(the key expired: likewise). A code the vendors judged wrong is remembered for the OTP and each vendor's reference, so
it fails again without costing an attempt or a vendor call: the budget counts distinct wrong codes.

An approved code credits one attempt with the conversion, in the same step: for a code the dispatcher generated,
the attempt that carried it (each code's hash is stored tagged with its send and vendor, ``<hash>@<send>@<vendor>``);
for a code a vendor generated, the latest attempt the vendor that approved it accepted. The record keeps its index in
the attempt log (``converted_by``) and the answer carries it, with the labels metrics count it under
(``Conversion``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from dispatcher.constants import attempts_key, check_key, record_key
from dispatcher.schemas import Attempt, VerifyStatus
from dispatcher.sealing import Sealer
from dispatcher.store.connection import DUE_GRACE, Connected, redis_errors
from dispatcher.store.scripts import load

DEFAULT_CHECK_TTL = 6.0
"""Seconds a vendor check stays marked in flight unless the caller says otherwise (the default vendor
timeout, 5 s, and a second)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """An OTP just verified: the attempt credited (None: the log names none), its country label and channel."""

    attempt: Attempt | None
    country: str
    channel: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decided verify: its status and, when APPROVED, what the conversion is credited to."""

    status: VerifyStatus
    conversion: Conversion | None = None


@dataclass(frozen=True, slots=True)
class VendorCheck:
    """A vendor that sent a code it checks, and its reference for that code."""

    vendor: str
    reference: str


@dataclass(frozen=True, slots=True)
class VerifyTicket:
    """A decided status; or the vendors to ask, newest first (an attempt is reserved and ``check`` names this
    call's lead of the vendor check); or neither (``waiting``): another call is asking the vendors about this code."""

    decided: VerifyStatus | None
    checks: tuple[VendorCheck, ...] = ()
    check: str = ""
    conversion: Conversion | None = None
    """With APPROVED: what the conversion is credited to."""

    @property
    def waiting(self) -> bool:
        """True while another call checks the same code with the vendors: ask again shortly."""
        return self.decided is None and not self.checks


WAIT = VerifyTicket(decided=None)


class VerificationOperations(Connected):
    """Verifies codes: exactly one of many concurrent right codes is APPROVED, at most the budget is evaluated."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._verify = load(redis, "verify")
        self._verify_settle = load(redis, "verify_settle")
        self._verify_refund = load(redis, "verify_refund")

    async def verify(
        self, otp_id: str, code_digest: str, now: float, check_ttl: float = DEFAULT_CHECK_TTL
    ) -> VerifyTicket:
        """Evaluate one code, atomically and within the OTP's attempt budget.

        The digest is compared in constant time with the keyed hash of every code the dispatcher
        generated for this OTP. If none matches and vendors that check their own codes delivered some: a code
        each of them already judged wrong fails at no cost; one being checked by another call waits (``WAIT``);
        otherwise one attempt is reserved, the check marked in flight for ``check_ttl`` seconds per vendor to
        ask, and those vendors returned, newest first: the caller asks them in turn until one approves, then
        calls ``settle_vendor_verify`` (or ``refund_verify``) with the ticket. An unknown id fails like a wrong
        code.
        """
        lead = secrets.token_hex(8)
        async with redis_errors():
            answer = await self._verify(
                keys=[record_key(otp_id), check_key(otp_id, code_digest), attempts_key(otp_id)],
                args=[now, code_digest, lead, max(1, int(check_ttl * 1000))],
            )
        if answer[0] == "VENDOR":
            checks = tuple(VendorCheck(str(vendor), str(reference)) for vendor, reference in json.loads(answer[1]))
            return VerifyTicket(decided=None, checks=checks, check=lead)
        if answer[0] == "WAIT":
            return WAIT
        verdict = _verdict(answer)
        return VerifyTicket(decided=verdict.status, conversion=verdict.conversion)

    async def settle_vendor_verify(
        self, otp_id: str, code_digest: str, ticket: VerifyTicket, approved_by: VendorCheck | None, now: float
    ) -> Verdict:
        """Record the vendors' answer to the check ``ticket`` leads: ``approved_by``, the vendor that approved the
        code, or None when every vendor of the ticket refused it. Of all concurrent approved codes exactly one is
        APPROVED (crediting the latest attempt the approving vendor accepted); a refused code is remembered as
        wrong for each reference of the ticket."""
        references = json.dumps([check.reference for check in ticket.checks])
        vendor = approved_by.vendor if approved_by else ""
        async with redis_errors():
            answer = await self._verify_settle(
                keys=[record_key(otp_id), check_key(otp_id, code_digest), attempts_key(otp_id)],
                args=[int(approved_by is not None), now, ticket.check, references, code_digest, vendor],
            )
        return _verdict(answer)

    async def refund_verify(self, otp_id: str, code_digest: str, ticket: VerifyTicket) -> None:
        """Give back an attempt whose code could not be evaluated (the vendor did not answer), and end the
        check ``ticket`` leads, so the next call with this code leads one."""
        async with redis_errors():
            await self._verify_refund(keys=[record_key(otp_id), check_key(otp_id, code_digest)], args=[ticket.check])


def _verdict(answer: list[str]) -> Verdict:
    """A verify script's decided answer: the status and, for APPROVED, the conversion."""
    status = VerifyStatus(answer[0])
    if status is not VerifyStatus.APPROVED:
        return Verdict(status)
    credited, country, channel = answer[1], answer[2], answer[3]
    attempt = Attempt.model_validate_json(credited) if credited else None
    return Verdict(status, Conversion(attempt, country, channel))
