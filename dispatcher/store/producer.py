"""The producer's operations on OTP records: create, discard, resend, report, and what the API asks of Redis.

Every read-check-write runs as one Lua script, so concurrent API processes and workers cannot interleave
inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatcher.constants import DEADLINES_KEY, DUE_KEY, EXPIRING_KEY, attempts_key, receipts_key, record_key
from dispatcher.errors import ResendRefused, UnknownOtp
from dispatcher.schemas import OtpReport
from dispatcher.sealing import Sealer
from dispatcher.store import record
from dispatcher.store.connection import DUE_GRACE, Connected, redis_errors
from dispatcher.store.limits import NO_LIMITS, SendLimits, raise_if_refused
from dispatcher.store.record import Field, NewOtp
from dispatcher.store.scripts import load

_RESEND_REFUSALS = {
    "EXPIRED": ("OTP_EXPIRED", "The OTP has expired; send a new one."),
    "VERIFIED": ("OTP_ALREADY_VERIFIED", "The OTP has already been verified."),
    "LIMIT": ("RESEND_LIMIT_REACHED", "The OTP was resent as many times as its retry_count allows."),
    "LOCKED": ("OTP_LOCKED", "Too many wrong codes were tried: the OTP is final; send a new one."),
}


@dataclass(frozen=True, slots=True)
class Resent:
    resend_count: int
    expires_at: float
    job_seq: int
    """The send job to queue for the new send (older jobs of this OTP are now stale)."""


class ProducerOperations(Connected):
    """Records OTPs as the API accepts them, counts resends, and reports."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._create = load(redis, "create")
        self._count_send = load(redis, "count_send")
        self._resend = load(redis, "resend")

    async def create(self, otp: NewOtp, limits: SendLimits = NO_LIMITS) -> float:
        """Record a new OTP awaiting its first send, due to be taken by a worker within the due grace (and in the
        expiring index, for the sweeper to debit it if it expires unverified), once ``limits`` allow it and count
        it, in one step; returns when it expires (epoch seconds). ``LimitReached`` (nothing written) if one refuses."""
        fields = record.encode(otp, self._sealer)
        ttl = otp.spec.expiry + self._grace
        due_at = otp.created_at + self._due_grace
        expires_at = fields[Field.EXPIRES_AT]
        args: list[EncodableT] = [
            ttl,
            otp.otp_id,
            due_at,
            expires_at,
            len(limits.args),
            *limits.args,
            *(item for pair in fields.items() for item in pair),
        ]
        keys = [record_key(otp.otp_id), DUE_KEY, EXPIRING_KEY, *limits.keys]
        async with redis_errors():
            raise_if_refused(await self._create(keys=keys, args=args))
        return float(expires_at)

    async def count_send(self, limits: SendLimits) -> None:
        """Check a resend against ``limits`` and count it; ``LimitReached`` (nothing counted) if one refuses."""
        async with redis_errors():
            raise_if_refused(await self._count_send(keys=list(limits.keys), args=list(limits.args)))

    async def discard(self, otp_id: str) -> None:
        """Forget an OTP whose send job could not be queued (the caller was told it failed)."""
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(record_key(otp_id), attempts_key(otp_id), receipts_key(otp_id))
            pipe.zrem(DUE_KEY, otp_id)
            pipe.zrem(EXPIRING_KEY, otp_id)
            await pipe.execute()

    async def check_resend(self, otp_id: str, now: float) -> None:
        """``ResendRefused`` (or ``UnknownOtp``) unless the OTP's resend rules allow a resend now; writes nothing."""
        async with redis_errors():
            answer = await self._resend(keys=[record_key(otp_id), DUE_KEY, DEADLINES_KEY], args=[now, 1, otp_id, 0])
        _refuse_unless(answer, "ALLOWED")

    async def resend(self, otp_id: str, now: float) -> Resent:
        """Count one more send if the OTP's resend rules allow it; else ``ResendRefused`` or ``UnknownOtp``."""
        async with redis_errors():
            answer = await self._resend(
                keys=[record_key(otp_id), DUE_KEY, DEADLINES_KEY], args=[now, 0, otp_id, now + self._due_grace]
            )
        _refuse_unless(answer, "OK")
        return Resent(resend_count=int(answer[1]), expires_at=float(answer[2]), job_seq=int(answer[3]))

    async def recipient_of(self, otp_id: str) -> tuple[str, str]:
        """The blinded number and the number range of an OTP (for the limits a resend counts against)."""
        async with redis_errors():
            index, prefix = await self._redis.hmget(record_key(otp_id), [Field.RECIPIENT_INDEX, Field.PREFIX])
        if index is None:
            raise UnknownOtp("No OTP exists with this otp_id.")
        return str(index), str(prefix)

    async def report(self, otp_id: str, now: float) -> OtpReport:
        """The OTP's status and every delivery attempt with its receipt, for the status endpoint."""
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(record_key(otp_id))
            pipe.lrange(attempts_key(otp_id), 0, -1)
            pipe.hgetall(receipts_key(otp_id))
            fields, attempts, receipts = await pipe.execute()
        if not fields:
            raise UnknownOtp("No OTP exists with this otp_id.")
        return record.report(otp_id, cast("dict[str, str]", fields), attempts, now, receipts)

    async def ping(self) -> None:
        async with redis_errors():
            await self._redis.ping()


def _refuse_unless(answer: list[str], allowed: str) -> None:
    """Raise what the resend script's ``answer`` refuses (``RESEND_TOO_SOON`` saying when), unless it is ``allowed``."""
    if answer[0] == "UNKNOWN":
        raise UnknownOtp("No OTP exists with this otp_id.")
    if answer[0] == "TOO_SOON":
        wait = math.ceil(float(answer[1]))
        message = f"Wait retry_delay seconds after the last send: a resend is allowed in {wait} s."
        raise ResendRefused(message, code="RESEND_TOO_SOON", retry_after=wait)
    if answer[0] != allowed:
        code, message = _RESEND_REFUSALS[answer[0]]
        raise ResendRefused(message, code=code)
