"""The four OTP operations, shared by the HTTP API and the Python client.

send → record in Redis → queue a job carrying only the otp_id; resend → count it → queue again;
verify → reserve an attempt atomically → check the code (locally against its keyed hashes, else with each
vendor that generated and delivered a code for the OTP, newest first, until one approves; one check per OTP
and code however many ask at once) → settle atomically; report → state and attempt log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from config import Settings
from config.settings import OTHER_COUNTRY
from dispatcher import codes
from dispatcher.errors import (
    DispatcherError,
    InvalidRequest,
    ResendRefused,
    UnknownOtp,
    VendorCheckUnavailable,
)
from dispatcher.guards import Caller, Guards, Recipient
from dispatcher.jobs import JobQueue
from dispatcher.metrics import CONVERSIONS, OTPS_BY_COUNTRY, SEND_TO_VERIFY, STEP_ADVANCES
from dispatcher.operators import Operators
from dispatcher.policy import otp_spec
from dispatcher.schemas import (
    OtpReport,
    OtpStatus,
    ResendOtpRequest,
    ResendOtpResponse,
    SendJob,
    SendOtpRequest,
    SendOtpResponse,
    StepEnd,
    VerifyOtpRequest,
    VerifyOtpResponse,
    VerifyStatus,
)
from dispatcher.sealing import Sealer
from dispatcher.store import (
    FIRST_JOB,
    MAX_VENDOR_CODES,
    Conversion,
    LimitReached,
    NewOtp,
    OtpStore,
    ReceiptAnswer,
    Replicas,
    StepKind,
    VendorCheck,
    VerifyTicket,
    connect_to,
)
from vendors import CodeChecker, OtpSpec, ProviderError, cannot_honour, phone
from vendors.receipts import Receipt, ReceiptOutcome

ANONYMOUS = Caller()
log = logging.getLogger(__name__)
"""A caller without token or address: the Python client, limited per number and range only."""
CHECK_MARGIN = 1.0
"""Seconds a vendor check stays marked in flight beyond the longest vendor timeout (then another caller may
lead a check of the same code); concurrent callers of the same code wait as long for its answer."""
CHECK_POLL_FIRST = 0.005
CHECK_POLL_LAST = 0.05
"""A caller waiting on another's vendor check of its code asks the store again after 5 ms, doubling to 50 ms."""
NO_LABEL = "none"
"""The vendor and channel label of a conversion no attempt could be credited with."""


@dataclass(frozen=True, slots=True)
class Backlog:
    queue_depths: dict[str, int]
    """Jobs waiting in each queue."""
    pending: int
    """OTPs whose current send is not final (queued, being delivered, or waiting for a retry)..."""
    overdue: int
    """...and those of them no worker took in time (the sweeper queues them again)."""


class OtpService:
    """Send, resend, verify and report OTPs against one store and one job queue."""

    def __init__(
        self,
        settings: Settings,
        store: OtpStore,
        guards: Guards,
        jobs: JobQueue,
        checker: CodeChecker,
        replicas: Replicas | None = None,
    ) -> None:
        self._settings = settings
        self._policy = settings.policy
        self._store = store
        self._guards = guards
        self._jobs = jobs
        self._checker = checker
        self._replicas = replicas or Replicas(None, None, 0, 0)
        self._code_key = codes.code_key(settings.secret_key.get_secret_value())
        self._postbacks = bool(settings.postback_secret.get_secret_value())
        self._check_ttl = max((provider.timeout for provider in settings.providers), default=0.0) + CHECK_MARGIN
        self._vendors = settings.enabled_providers
        self.operators = Operators(settings, store)
        """The stats by route and the routing overrides (``dispatcher/operators.py``)."""

    @classmethod
    def connect(cls, settings: Settings) -> OtpService:
        """A service with its own Redis pool, publisher and vendor session; call ``close()`` when done."""
        settings.require("redis_url", "secret_key")
        assert settings.store_redis is not None
        redis = connect_to(settings.store_redis)
        sealer = Sealer(settings.secret_key.get_secret_value())
        store = OtpStore(redis, sealer, settings.policy.record_grace, settings.sweep_interval)
        guards = Guards(redis, sealer, settings.limits)
        broker = connect_to(settings.broker_redis) if settings.broker_url and settings.broker_redis else None
        replicas = Replicas(redis, broker, settings.redis.wait_replicas, settings.redis.wait_timeout)
        return cls(settings, store, guards, JobQueue(settings), CodeChecker(settings), replicas)

    async def close(self) -> None:
        await self._jobs.close()
        await self._replicas.close()
        await self._store.close()
        await self._checker.close()

    async def send(
        self, request: SendOtpRequest, caller: Caller = ANONYMOUS, idempotency_key: str | None = None
    ) -> SendOtpResponse:
        """Accept an OTP and queue its delivery; with ``idempotency_key``, a replay gets the first answer. With
        ``OTP_REDIS__WAIT_REPLICAS``, the answer waits until replicas hold the record, its job and the key."""
        if idempotency_key is None:
            answer = await self._send(request, caller)
            await self._replicas.confirm()
            return answer
        replayed = await self._guards.replay(caller, idempotency_key, request.model_dump_json())
        if replayed is not None:
            return SendOtpResponse.model_validate_json(replayed)
        try:
            answer = await self._send(request, caller)
        except DispatcherError:
            with contextlib.suppress(DispatcherError):
                await self._guards.remember(caller, idempotency_key, None)
            raise
        await self._guards.remember(caller, idempotency_key, answer.model_dump_json())
        await self._replicas.confirm()
        return answer

    async def _send(self, request: SendOtpRequest, caller: Caller) -> SendOtpResponse:
        spec = otp_spec(request, self._policy)
        if (spec.success_url or spec.failure_url) and not self._postbacks:
            problem = "postbacks are off on this dispatcher (it has no OTP_POSTBACK_SECRET to sign them)"
            raise InvalidRequest.at(["body", "success_url"], problem)
        self._check_honoured(spec)
        self._guards.check_number(phone.parse(request.recipient))
        recipient = self._guards.recipient(request.recipient)
        otp_id, now = str(uuid.uuid4()), time.time()
        await self._guards.claim_in_flight(recipient, otp_id, spec.expiry, now)
        workflow = self._settings.workflow_for(spec.recipient)
        otp = NewOtp(
            otp_id=otp_id,
            spec=spec,
            recipient_index=recipient.index,
            prefix=recipient.prefix,
            created_at=now,
            workflow=workflow,
            channels=self._settings.workflow(workflow).channels(spec.channel) if workflow else (),
            country=self._settings.metrics_country(spec.recipient),
        )
        try:
            expires_at = await self._store.create(otp, self._guards.limits(recipient, caller))
        except LimitReached as reached:
            raise self._guards.refusal(reached, recipient) from None
        await self._enqueue(SendJob(otp_id, FIRST_JOB), expires_at, discard_on_failure=True)
        OTPS_BY_COUNTRY.labels(otp.country).inc()
        return SendOtpResponse(otp_id=otp_id, status=OtpStatus.OPEN, expiry=spec.expiry)

    def _check_honoured(self, spec: OtpSpec) -> None:
        """422 when no enabled vendor serving the number could ever send ``spec`` as asked (its channel, code
        type and length, message): it could only fail. Skipped without a chain (an API may run without one)."""
        channels = self._settings.workflow(self._settings.workflow_for(spec.recipient)).channels(spec.channel)
        problems = {
            vendor.name: cannot_honour(vendor, spec) for vendor in self._vendors if vendor.serves(spec.recipient)
        }
        for channel in channels[1:]:  # a later step of the OTP's workflow may go out on a channel they honour
            stepped = spec.model_copy(update={"channel": channel})
            if any(cannot_honour(vendor, stepped) is None for vendor in self._vendors if vendor.serves(spec.recipient)):
                return
        if problems and all(problems.values()):
            why = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
            raise InvalidRequest.at(["body"], f"no vendor of this dispatcher can honour this OTP: {why}")

    async def resend(self, request: ResendOtpRequest, caller: Caller = ANONYMOUS) -> ResendOtpResponse:
        """The OTP's resend rules are checked before the limits count it, so a refused resend uses no quota;
        one that passes the check but loses a race with another resend is taken back from the limits."""
        now = time.time()
        await self._store.check_resend(request.otp_id, now)
        index, prefix = await self._store.recipient_of(request.otp_id)
        recipient = Recipient(index=index, prefix=prefix)
        try:
            await self._store.count_send(self._guards.limits(recipient, caller))
        except LimitReached as reached:
            raise self._guards.refusal(reached, recipient) from None
        try:
            resent = await self._store.resend(request.otp_id, now)
        except (ResendRefused, UnknownOtp):
            with contextlib.suppress(DispatcherError):
                await self._guards.uncount_send(recipient, caller)
            raise
        await self._enqueue(SendJob(request.otp_id, resent.job_seq), resent.expires_at, discard_on_failure=False)
        return ResendOtpResponse(
            otp_id=request.otp_id,
            status=OtpStatus.OPEN,
            expiry=max(0, int(resent.expires_at - now)),
            resend_count=resent.resend_count,
        )

    async def verify(self, request: VerifyOtpRequest) -> VerifyOtpResponse:
        """Check a code; concurrent verifies of one vendor-checked code share one vendor call (the first
        leads it, the others ask the store again until it settles, ``CHECK_POLL_FIRST`` to ``_LAST`` apart)."""
        otp_id, code = request.otp_id, codes.normalise(request.otp_code)
        digest = codes.digest(self._code_key, otp_id, code)
        deadline, pause = time.monotonic() + self._check_ttl * MAX_VENDOR_CODES, CHECK_POLL_FIRST
        while True:
            ticket = await self._store.verify(otp_id, digest, time.time(), self._check_ttl)
            if ticket.decided is not None:
                await self._replicas.confirm()  # the outcome (OTP_REDIS__WAIT_REPLICAS)
                _count(ticket.conversion)
                return VerifyOtpResponse(status=ticket.decided)
            if not ticket.waiting:
                return VerifyOtpResponse(status=await self._vendor_verify(otp_id, digest, ticket, code))
            if time.monotonic() >= deadline:
                raise VendorCheckUnavailable("The vendor that sent this code is still checking it; try again.")
            await asyncio.sleep(pause)
            pause = min(pause * 2, CHECK_POLL_LAST)

    async def _vendor_verify(self, otp_id: str, digest: str, ticket: VerifyTicket, code: str) -> VerifyStatus:
        """Ask the ticket's vendors in turn, newest first, until one approves the code; when none does and one
        could not say, the attempt is given back and the caller told to try again."""
        approved_by: VendorCheck | None = None
        unanswered: VendorCheckUnavailable | None = None
        for check in ticket.checks:
            try:
                if await self._vendor_check(check.vendor, check.reference, code):
                    approved_by = check
                    break
            except VendorCheckUnavailable as exc:
                unanswered = unanswered or exc
        if approved_by is None and unanswered is not None:
            await self._store.refund_verify(otp_id, digest, ticket)
            raise unanswered
        settled = await self._store.settle_vendor_verify(otp_id, digest, ticket, approved_by, time.time())
        await self._replicas.confirm()
        _count(settled.conversion)
        return settled.status

    async def backlog(self) -> Backlog:
        """Jobs waiting in each queue (read from the broker), and the OTPs whose send is not final (the store)."""
        depths = await self._jobs.queue_depths()
        pending, overdue = await self._store.pending(time.time())
        return Backlog(depths, pending, overdue)

    async def ping(self) -> None:
        """``ServiceUnavailable`` unless Redis answers."""
        await self._store.ping()

    async def report(self, otp_id: str) -> OtpReport:
        return await self._store.report(otp_id, time.time())

    async def receipt(self, vendor: str, receipt: Receipt) -> ReceiptAnswer:
        """Record a delivery receipt from ``vendor`` against the attempt it names (one step in Redis); the first
        receipt with evidence for the OTP's current send acts on its workflow: delivered ends it, undelivered
        sends the next step at once (its job published here; if the broker cannot take it, the sweeper will)."""
        answer = await self._store.record_receipt(vendor, receipt, time.time())
        if not (answer.first and answer.send_open and self._settings.workflows):
            return answer
        if receipt.outcome is ReceiptOutcome.NONE:
            return answer
        name = await self._store.workflow_of(answer.otp_id)
        workflow = self._settings.workflow(name or "")
        if not name or workflow.last_step == 0:
            return answer
        reason = StepEnd.DELIVERED if receipt.outcome is ReceiptOutcome.DELIVERED else StepEnd.UNDELIVERED
        step = await self._store.end_step(
            answer.otp_id, reason, workflow.last_step, time.time(), attempt=answer.attempt
        )
        if step.kind is StepKind.ADVANCED:
            STEP_ADVANCES.labels(reason.value).inc()
            log.info("otp %s: undelivered receipt from %s; step %d goes out", answer.otp_id, vendor, step.step)
            try:
                await self._jobs.enqueue_send(SendJob(answer.otp_id, step.job_seq), step.expires_at)
            except DispatcherError as exc:
                log.warning(
                    "otp %s: step %d's job not queued (%s); the sweeper queues it", answer.otp_id, step.step, exc
                )
        return answer

    async def _vendor_check(self, vendor: str, reference: str, code: str) -> bool:
        try:
            return await self._checker.check(vendor, reference, code)
        except ProviderError as exc:
            raise VendorCheckUnavailable(f"The vendor that sent this code could not check it ({exc.code}).") from exc

    async def _enqueue(self, job: SendJob, expires_at: float, *, discard_on_failure: bool) -> None:
        try:
            await self._jobs.enqueue_send(job, expires_at)
        except DispatcherError:
            if discard_on_failure:
                with contextlib.suppress(DispatcherError):
                    await self._store.discard(job.otp_id)
            raise


def _count(conversion: Conversion | None) -> None:
    """Count an APPROVED verify under the attempt credited (``none`` when none could be), and the time from that
    attempt's acceptance by its vendor to now."""
    if conversion is None:
        return
    attempt = conversion.attempt
    vendor = attempt.vendor if attempt else NO_LABEL
    channel = (attempt.channel if attempt else None) or conversion.channel or NO_LABEL
    CONVERSIONS.labels(vendor, channel, conversion.country or OTHER_COUNTRY).inc()
    if attempt is not None:
        accepted = attempt.started_at.timestamp() + attempt.latency_ms / 1000
        SEND_TO_VERIFY.labels(vendor).observe(max(0.0, time.time() - accepted))
