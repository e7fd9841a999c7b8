"""Workflow steps on OTP records: a step gives way to the next, or the workflow stops, in one step in Redis.

The current step's deadline is set by the same script that records its send as taken by a vendor
(``runs.mark_delivered``), in the record and in the deadlines index (``DEADLINES_KEY``), whose sweep queues
again a deadline job that was lost. Everything that acts on a step (its deadline job, an undelivered or
delivered receipt, the worker finding no vendor for it) goes through ``workflow.lua``, which checks the OTP's
state, its current send and step, and acts at most once: a late deadline job, a duplicate receipt, a receipt
for an earlier send, all do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatcher.constants import DEADLINES_KEY, DUE_KEY, RECORD_PREFIX, attempts_key, lease_key, record_key
from dispatcher.schemas import DeadlineJob, StepEnd
from dispatcher.sealing import Sealer
from dispatcher.store.connection import DUE_GRACE, Connected, redis_errors
from dispatcher.store.record import Field
from dispatcher.store.scripts import load
from dispatcher.store.sweeps import SWEEP_LIMIT


class StepKind(StrEnum):
    ADVANCED = "ADVANCED"
    """The next step is a new send: queue its job."""
    WAIT = "WAIT"
    """The deadline has not passed yet (a deadline job that ran early, or one hop of a long deadline)."""
    STOPPED = "STOPPED"
    """A delivered receipt ended the workflow (or no deadline runs)."""
    LAST = "LAST"
    """No step follows this one."""
    STALE = "STALE"
    """A newer send or step exists: nothing done."""
    OVER = "OVER"
    """The OTP is verified, failed or expired: nothing more goes out."""
    GONE = "GONE"


@dataclass(frozen=True, slots=True)
class StepAnswer:
    kind: StepKind
    job_seq: int = 0
    """With ADVANCED: the new send's job number."""
    expires_at: float = 0.0
    step: int = 0
    """With ADVANCED: the step now current."""
    deadline_at: float = 0.0
    """With WAIT: when the deadline is."""


@dataclass(frozen=True, slots=True)
class Overdue:
    """A step whose deadline job the sweeper queues again."""

    job: DeadlineJob
    expires_at: float


class WorkflowOperations(Connected):
    """Workflow decisions: a step's deadline, its receipts, a step no vendor took."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._workflow = load(redis, "workflow")
        self._sweep_deadlines = load(redis, "sweep_deadlines")

    async def end_step(
        self,
        otp_id: str,
        reason: StepEnd,
        last_step: int,
        now: float,
        *,
        send_seq: int | None = None,
        attempt: int = -1,
        lease: str = "",
    ) -> StepAnswer:
        """Act on the OTP's current step for ``reason``, if ``send_seq`` (or the send of the attempt at index
        ``attempt``) is still its current send: DELIVERED stops the workflow; DEADLINE (once passed),
        UNDELIVERED and FAILED start step + 1 as a new send when there is one (``last_step``: the workflow's
        last). With ``lease`` (FAILED, from the worker's run), an advance ends the run."""
        keys = [record_key(otp_id), DUE_KEY, DEADLINES_KEY, lease_key(otp_id), attempts_key(otp_id)]
        args: list[EncodableT] = [
            otp_id,
            reason.value,
            "" if send_seq is None else send_seq,
            attempt,
            now,
            last_step,
            self._due_grace,
            lease,
        ]
        async with redis_errors():
            answer = await self._workflow(keys=keys, args=args)
        kind = StepKind(answer[0])
        if kind is StepKind.ADVANCED:
            return StepAnswer(kind, job_seq=int(answer[1]), expires_at=float(answer[2]), step=int(answer[3]))
        if kind is StepKind.WAIT:
            return StepAnswer(kind, deadline_at=float(answer[1]), expires_at=float(answer[2]))
        return StepAnswer(kind)

    async def awaited_receipt(self, otp_id: str, send_seq: int, now: float) -> tuple[str, str] | None:
        """The vendor and receipt reference of send ``send_seq``'s accepted attempt, when that send is the OTP's
        current one, open, its step's deadline has passed and no delivered receipt confirmed it: what a deadline
        may poll the vendor about before acting (``end_step`` decides, atomically, whatever this read saw)."""
        fields = (Field.STATUS, Field.SEND_SEQ, Field.DELIVERED_SEQ, Field.STEP_DEADLINE, Field.STEP_DELIVERED)
        async with redis_errors():
            values = await self._redis.hmget(record_key(otp_id), [*fields, Field.RECEIPT_REF])
        status, current, delivered, deadline, confirmed, receipt_ref = (str(value or "") for value in values)
        if status != "OPEN" or not receipt_ref or not (int(current or 0) == int(delivered or 0) == send_seq):
            return None
        if not 0 < float(deadline or 0) <= now or int(confirmed or 0) == send_seq:
            return None
        vendor, _, reference = receipt_ref.partition(" ")
        return vendor, reference

    async def workflow_of(self, otp_id: str) -> str | None:
        """The name of the workflow the OTP follows (empty: none configured), or None once it is gone."""
        async with redis_errors():
            name = await self._redis.hget(record_key(otp_id), Field.WORKFLOW)
        return None if name is None else str(name)

    async def sweep_deadlines(self, now: float) -> list[Overdue]:
        """The steps whose deadline passed a grace ago and are still waiting (their deadline job was lost or is
        late), each due again a grace later."""
        args: list[EncodableT] = [now, self._due_grace, SWEEP_LIMIT, RECORD_PREFIX]
        async with redis_errors():
            taken = await self._sweep_deadlines(keys=[DEADLINES_KEY], args=args)
        return [
            Overdue(DeadlineJob(str(otp_id), int(step), int(send)), float(expires_at))
            for otp_id, step, send, expires_at in taken
        ]
