"""The worker's runs on OTP records: claim the current send, record progress, attempts and the outcome.

Each send job carries a job number and the record holds the newest one, so only the newest job of an
OTP runs (a job the broker hands out twice calls no vendor twice). A run holds a lease while it calls
vendors; its last write gives the lease up. A run that died holding it (worker killed) is counted by the
next one, and the OTP fails for good after ``MAX_CRASHES`` of them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis.asyncio as aioredis
from redis.typing import EncodableT

from dispatcher.constants import (
    DEADLINES_KEY,
    DUE_KEY,
    POSTBACKS_DUE_KEY,
    attempts_key,
    early_receipt_key,
    lease_key,
    receipt_ref_key,
    receipts_key,
    record_key,
)
from dispatcher.schemas import Attempt, ReceiptStatus
from dispatcher.sealing import Sealer
from dispatcher.store import record
from dispatcher.store.connection import DUE_GRACE, POSTBACK_GRACE, Connected, redis_errors
from dispatcher.store.record import DeliveryState
from dispatcher.store.scripts import load

MAX_CODES = 5
"""Codes of one OTP kept verifiable at once (each send or uncertain retry may have reached the phone)."""
MAX_VENDOR_CODES = 5
"""Vendors (with their references) a code is checked with at most: the newest vendor-generated codes of an OTP, one
per workflow step at most (``config.workflows.MAX_STEPS``), stay valid."""
MAX_CRASHES = 3
"""Runs of one OTP that may die mid-way (worker killed, out of memory) before it is failed for good."""

_POISON_REASON = f"delivery runs died {MAX_CRASHES} times (worker killed or out of memory)"


class ClaimKind(StrEnum):
    RUN = "RUN"
    """The run may call vendors."""
    CRASHED = "CRASHED"
    """As RUN, but the previous run of this OTP died mid-way (its outcome at its vendor is unknown)."""
    BUSY = "BUSY"
    """Another run holds the lease; look again later."""
    SKIP = "SKIP"
    """Nothing to do: the OTP is gone, final, delivered or expired, or a newer job replaced this one."""
    POISON = "POISON"
    """Runs of this OTP kept dying; it is now FAILED and no vendor is called again."""


@dataclass(frozen=True, slots=True)
class Marked:
    """What ``mark_delivered`` did."""

    delivered: bool
    """The attempt's vendor is recorded as having delivered this send (False: a later send was delivered first)."""
    early_receipt: ReceiptStatus | None = None
    """A receipt with evidence that came before the attempt was logged, taken by it (and counted for its route)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a job run's claim on its OTP: with ``state`` and ``lease`` when it may run."""

    kind: ClaimKind
    expires_at: float = 0.0
    state: DeliveryState | None = None
    lease: str = ""


class RunOperations(Connected):
    """Delivery runs: what a worker reads and writes while it walks the provider chain for one send."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        super().__init__(redis, sealer, grace, due_grace)
        self._claim = load(redis, "claim")
        self._release = load(redis, "release")
        self._save_progress = load(redis, "save_progress")
        self._mark_delivered = load(redis, "mark_delivered")
        self._record_attempt = load(redis, "record_attempt")
        self._add_code_hash = load(redis, "add_code_hash")
        self._mark_failed = load(redis, "mark_failed")
        self._save_route = load(redis, "save_route")

    async def delivery_state(self, otp_id: str) -> DeliveryState | None:
        """The OTP as a worker delivers it (its spec unsealed), or None once it is gone."""
        async with redis_errors():
            fields = cast("dict[str, str]", await self._redis.hgetall(record_key(otp_id)))
        return record.delivery_state(otp_id, fields, self._sealer) if fields else None

    async def claim(self, otp_id: str, job_seq: int, lease_seconds: float, now: float, token: str = "") -> Claim:
        """Claim the right to call vendors for the current send of an OTP, for one run of job ``job_seq``.

        One step in Redis: nothing to do once the send is delivered, final or expired, or when a newer
        job of the OTP exists (so a job the broker delivered twice runs once); busy while another run
        holds the lease; and when the previous run died holding it (the lease ran out, never released),
        that is counted, and the OTP fails for good after ``MAX_CRASHES`` of them. A run that may go on is
        due again (for the sweeper) once its lease would run out; a send that is over is no longer due.

        ``token``: what the run holds the lease by (default: a new one). A caller that picks it can give the lease
        back when the claim's answer is lost, the claim maybe made (``release(..., only_if_held=True)``). The same
        claim sent again (its token holds the lease) answers what the first one did.
        """
        token = token or secrets.token_hex(8)
        keys = [record_key(otp_id), lease_key(otp_id), DUE_KEY, POSTBACKS_DUE_KEY]
        args: list[EncodableT] = [
            now,
            job_seq,
            token,
            int(lease_seconds * 1000),
            MAX_CRASHES,
            _POISON_REASON,
            otp_id,
            self._due_grace,
            now + POSTBACK_GRACE,
        ]
        async with redis_errors():
            answer = await self._claim(keys=keys, args=args)
        kind = ClaimKind(answer[0])
        if kind is ClaimKind.SKIP:
            return Claim(kind)
        if kind is ClaimKind.BUSY:
            return Claim(kind, expires_at=float(answer[1]))
        pairs = answer[2]
        state = record.delivery_state(otp_id, dict(zip(pairs[::2], pairs[1::2], strict=True)), self._sealer)
        return Claim(kind, expires_at=state.expires_at, state=state, lease="" if kind is ClaimKind.POISON else token)

    async def release(self, otp_id: str, lease: str, *, only_if_held: bool = False) -> None:
        """End a run: give up its lease (a run that never gets here is counted as crashed by the next one).
        ``only_if_held``: only if ``lease`` holds it now (the lease of a claim whose answer was lost)."""
        async with redis_errors():
            await self._release(keys=[record_key(otp_id), lease_key(otp_id)], args=[lease, int(only_if_held)])

    async def save_progress(
        self, otp_id: str, send_seq: int, chain_pos: int, vendor_tries: int, *, retry_at: float = 0, lease: str = ""
    ) -> int:
        """Remember where in the provider chain the current send stands; with ``retry_at`` (a Unix time), a
        retry due then is about to be queued, earlier jobs of the OTP become stale and the OTP is due (for
        the sweeper) a grace after it. Returns the job number to queue, 0 when a resend replaced this send
        (its own job carries on). With ``lease``, the run ends here."""
        keys = [record_key(otp_id), lease_key(otp_id), DUE_KEY]
        args: list[EncodableT] = [send_seq, chain_pos, vendor_tries, retry_at, lease, otp_id, self._due_grace]
        async with redis_errors():
            return int(await self._save_progress(keys=keys, args=args))

    async def save_route(self, otp_id: str, send_seq: int, routing: str) -> None:
        """Keep the route send ``send_seq`` decided (``Field.ROUTING``), so its later runs walk the same one."""
        async with redis_errors():
            await self._save_route(keys=[record_key(otp_id)], args=[send_seq, routing])

    async def record_attempt(self, otp_id: str, attempt: Attempt) -> None:
        """Append one failed vendor call to the attempt log; the log expires with the record."""
        async with redis_errors():
            await self._record_attempt(
                keys=[record_key(otp_id), attempts_key(otp_id)], args=[attempt.model_dump_json()]
            )

    async def add_code_hash(self, otp_id: str, code_hash: str, send_seq: int, vendor: str) -> None:
        """Make a code the dispatcher generated verifiable, before it is handed to ``vendor`` for send
        ``send_seq`` (it may arrive): approved, it credits that attempt with the conversion.

        Every such code of the OTP stays valid until it expires or is verified (resends and retries
        whose outcome is unknown included), up to the ``MAX_CODES`` most recent.
        """
        async with redis_errors():
            await self._add_code_hash(keys=[record_key(otp_id)], args=[code_hash, MAX_CODES, send_seq, vendor])

    async def mark_delivered(
        self,
        otp_id: str,
        send_seq: int,
        reference: str,
        attempt: Attempt,
        lease: str = "",
        *,
        receipt_reference: str | None = None,
        deadline_at: float = 0,
    ) -> Marked:
        """Log the successful ``attempt`` and, in the same step, record its vendor as having delivered
        this send (unless a later send was delivered first). With ``lease``, the run ends here.

        ``reference`` is given only by vendors that check their own codes: verification asks each such vendor,
        the latest first (``MAX_VENDOR_CODES`` of them). ``receipt_reference``, the vendor's name for the message in its
        receipts, is mapped to this attempt in the same step (and a receipt that came first is taken).
        """
        rx_ref = receipt_reference or ""
        keys = [
            record_key(otp_id),
            attempts_key(otp_id),
            lease_key(otp_id),
            DUE_KEY,
            POSTBACKS_DUE_KEY,
            receipt_ref_key(attempt.vendor, rx_ref),
            early_receipt_key(attempt.vendor, rx_ref),
            receipts_key(otp_id),
            DEADLINES_KEY,
        ]
        postback_due = time.time() + POSTBACK_GRACE
        accepted_at = attempt.started_at.timestamp() + attempt.latency_ms / 1000
        args: list[EncodableT] = [
            send_seq,
            attempt.vendor,
            reference,
            attempt.model_dump_json(),
            lease,
            otp_id,
            postback_due,
            accepted_at,
            1 if rx_ref else 0,
            deadline_at,
            self._due_grace,
            rx_ref,
            MAX_VENDOR_CODES,
        ]
        async with redis_errors():
            done, early_receipt = await self._mark_delivered(keys=keys, args=args)
        return Marked(bool(done), ReceiptStatus(early_receipt) if early_receipt else None)

    async def mark_failed(self, otp_id: str, send_seq: int, reason: str, lease: str = "") -> None:
        """This send reached nobody; the OTP is FAILED unless an earlier send was delivered. With
        ``lease``, the run ends here."""
        async with redis_errors():
            await self._mark_failed(
                keys=[record_key(otp_id), lease_key(otp_id), DUE_KEY, POSTBACKS_DUE_KEY],
                args=[send_seq, reason, lease, otp_id, time.time() + POSTBACK_GRACE],
            )

    async def logged_attempts(self, otp_id: str) -> list[Attempt]:
        """Every attempt logged for the OTP, oldest first, each with its receipt (a workflow step leaves out
        the vendors that took an earlier send without a delivered receipt)."""
        async with redis_errors(), self._redis.pipeline(transaction=True) as pipe:
            pipe.lrange(attempts_key(otp_id), 0, -1)
            pipe.hgetall(receipts_key(otp_id))
            logged, receipts = await pipe.execute()
        return [record.with_receipt(item, receipts.get(str(index))) for index, item in enumerate(logged)]

    async def send_attempts(self, otp_id: str, send_seq: int) -> list[Attempt]:
        """The attempts logged for send ``send_seq`` of an OTP (calls and vendors passed over), oldest first."""
        async with redis_errors():
            logged = await self._redis.lrange(attempts_key(otp_id), 0, -1)
        attempts = [Attempt.model_validate_json(item) for item in logged]
        return [attempt for attempt in attempts if attempt.send_number == send_seq]
