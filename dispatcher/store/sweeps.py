"""The sweeper's operations: the OTPs and postbacks whose jobs were lost, found in the due indexes.

A broker is a transport, not the source of truth: a job can be lost (a worker killed between the broker's
pop and its own bookkeeping, a publish Redis refused). So every OTP whose send is not final is in the due
index, scored by the time a run must have taken it by (written by the same scripts that create, resend,
claim, retry and end it), and every postback owed is in the postbacks index. The sweeper asks here, every
due grace, for what is overdue, and queues those jobs again; job numbers make any older copy harmless.
Every OTP is also in the expiring index until a sweep takes it, once its code has expired: one not verified
then debits the attempts it made (``sweep_expired``), exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatcher.constants import (
    DUE_KEY,
    EXPIRING_KEY,
    POSTBACKS_DUE_KEY,
    RECORD_PREFIX,
    SWEEPER_KEY,
    record_key,
)
from dispatcher.schemas import PostbackEvent, SendJob
from dispatcher.sealing import Sealer
from dispatcher.store.connection import DUE_GRACE, POSTBACK_GRACE, Connected, redis_errors
from dispatcher.store.record import Field
from dispatcher.store.scripts import load
from dispatcher.store.stats import Route

SWEEP_LIMIT = 500
"""OTPs (and postbacks) one sweep takes at most; the rest are taken by the next sweeps."""


@dataclass(frozen=True, slots=True)
class Lost:
    """An OTP whose job is queued again: its new job, and when the OTP expires."""

    job: SendJob
    expires_at: float


class SweepOperations(Connected):
    """The due indexes: sweeping them, and keeping them right as workers take jobs and postbacks land."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._sweep = load(redis, "sweep")
        self._sweep_postbacks = load(redis, "sweep_postbacks")
        self._sweep_expired = load(redis, "sweep_expired")

    async def take_sweep_turn(self, token: str) -> bool:
        """Whether this process sweeps now: one at a time, for one due grace."""
        async with redis_errors():
            return bool(await self._redis.set(SWEEPER_KEY, token, nx=True, px=int(self._due_grace * 1000)))

    async def sweep(self, now: float, horizon: float, backlog: bool) -> list[Lost]:
        """The overdue OTPs no run holds, each with a new job to queue; while jobs wait in the send queue
        (``backlog``), an OTP's job may be among them until it is ``horizon`` old (the visibility timeout)."""
        args: list[EncodableT] = [now, self._due_grace, SWEEP_LIMIT, RECORD_PREFIX, horizon, int(backlog)]
        async with redis_errors():
            taken = await self._sweep(keys=[DUE_KEY], args=args)
        return [Lost(SendJob(str(otp_id), int(job_seq)), float(expires_at)) for otp_id, job_seq, expires_at in taken]

    async def sweep_postbacks(self, now: float) -> list[tuple[str, PostbackEvent]]:
        """The owed postbacks that are due (each due again later, until ``postback_received``)."""
        args: list[EncodableT] = [now, POSTBACK_GRACE, SWEEP_LIMIT, RECORD_PREFIX]
        async with redis_errors():
            taken = await self._sweep_postbacks(keys=[POSTBACKS_DUE_KEY], args=args)
        return [(otp_id, PostbackEvent(event)) for otp_id, event in (str(owed).rsplit(":", 1) for owed in taken)]

    async def sweep_expired(self, now: float) -> list[Route]:
        """Debit the OTPs whose code expired unverified a due grace ago or more (the grace covers the clocks of the
        API and the workers disagreeing): the route of each attempt a vendor accepted, once per OTP however many
        sweep. An OTP whose record is gone by then (Redis away for longer than the record grace) debits nothing."""
        args: list[EncodableT] = [now - self._due_grace, SWEEP_LIMIT, RECORD_PREFIX]
        async with redis_errors():
            debited = await self._sweep_expired(keys=[EXPIRING_KEY], args=args)
        return [Route(str(vendor), str(channel), str(country)) for vendor, channel, country in debited]

    async def pending(self, now: float) -> tuple[int, int]:
        """OTPs whose send is not final, and those of them overdue (no worker took their job in time)."""
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(DUE_KEY)
            pipe.zcount(DUE_KEY, "-inf", now)
            total, overdue = await pipe.execute()
        return int(total), int(overdue)

    async def postpone(self, otp_ids: list[str], until: float) -> None:
        """A worker has taken these OTPs' job (the broker now hands it out again if the worker dies): not due
        before ``until``. OTPs no longer due stay so; a later due time stays."""
        async with redis_errors():
            await self._redis.zadd(DUE_KEY, dict.fromkeys(otp_ids, until), xx=True, gt=True)

    async def postback_received(self, otp_id: str, event: PostbackEvent) -> None:
        """The receiver took the postback: it is owed no more."""
        async with redis_errors():
            await self._redis.zrem(POSTBACKS_DUE_KEY, f"{otp_id}:{event}")

    async def postback_later(self, otp_id: str, event: PostbackEvent, delay: float, now: float) -> None:
        """The receiver did not take the postback: due again in ``delay`` seconds (the sweeper sends it)."""
        async with redis_errors():
            await self._redis.zadd(POSTBACKS_DUE_KEY, {f"{otp_id}:{event}": now + delay}, xx=True)

    async def postback_tries(self, otp_id: str) -> int:
        """Count one more failed try of the OTP's postbacks; the number so far."""
        async with redis_errors():
            return int(await self._redis.hincrby(record_key(otp_id), Field.POSTBACK_TRIES, 1))
