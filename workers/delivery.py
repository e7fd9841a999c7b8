"""The provider chain: deliver the current send of one OTP, vendor after vendor, deciding when to retry.

For each vendor of the route (``routing.route``), in order: a vendor whose circuit is open is skipped
without a call, a temporary failure is retried on the same vendor after a
backoff (up to that vendor's ``attempts``), an unavailable vendor is skipped at once, a rejection
fails the OTP. Progress is kept in the OTP record, so a retried or redelivered job resumes where the
last one stopped, and a send already delivered is never delivered again. Each job carries a job number:
the store lets only the newest job of an OTP run (``OtpStore.claim``), so a job the broker hands out
twice calls no vendor twice. A run that died mid-way (worker killed) is treated as an attempt whose
outcome is unknown: the next run fails over rather than call that vendor again. A run whose last write
Redis was away for is not dead: the next run of the OTP in the same process makes that write first (a
delivery the vendor took is recorded, not sent again). The retry itself is scheduled by the task
(``RetryLater``), the only place that retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from config import ProviderSettings, Settings
from dispatcher import codes
from dispatcher.errors import DispatcherError
from dispatcher.schemas import Attempt, AttemptOutcome, PostbackEvent, ReceiptStatus, SendJob
from dispatcher.store import MAX_REDIS_CONNECTIONS, ClaimKind, DeliveryState, OtpStore
from vendors import OutcomeUnknown, Provider, ProviderError, Rejected, VendorUnavailable
from vendors.receipts import Sent
from workers import routing
from workers.breaker import CallResult, CircuitBreakers
from workers.metrics import ATTEMPTS, CIRCUIT_OPEN, FAILOVERS, LATENCY, RETRIES

UNWRITTEN_RETRY = 0.5
"""Seconds between two tries of the last writes Redis was away for."""
MAX_RUNS = MAX_REDIS_CONNECTIONS * 3 // 4
"""OTPs one process delivers at once; the others of its batches wait their turn, so the process's Redis
pool is never exhausted (each run uses one connection at a time)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finished:
    """The send reached its final outcome; ``postback`` when the OTP asked to be told of it."""

    event: PostbackEvent
    postback: bool


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Queue ``job`` to run in ``countdown`` seconds, unless the OTP expires first."""

    job: SendJob
    countdown: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class _LastWrite:
    """A run's last write that failed while Redis was away, and what the run would have returned after it."""

    write: Callable[[], Awaitable[object]]
    outcome: Finished | None


def backoff(provider: ProviderSettings, tries: int) -> float:
    """Exponential backoff with jitter after ``tries`` failed attempts, capped by the vendor's maximum."""
    ceiling = min(provider.retry_delay_max, provider.retry_delay * 2 ** (tries - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


class Deliverer:
    """Delivers OTPs through the configured chain; shared by every task of one worker process."""

    def __init__(
        self, settings: Settings, store: OtpStore, breakers: CircuitBreakers, providers: dict[str, Provider]
    ) -> None:
        self._settings = settings
        self._store = store
        self._breakers = breakers
        self._providers = providers
        self._code_key = codes.code_key(settings.secret_key.get_secret_value())
        self._runs = asyncio.Semaphore(MAX_RUNS)
        self._unwritten: dict[str, _LastWrite] = {}
        """The last writes of runs that Redis was away for, by otp_id: made as soon as Redis answers again
        (``keep_writing``), or first by the next run of the OTP here, so a send the vendor took is recorded
        (not sent again) and the run is not taken for the run of a dead worker."""
        self.lease_seconds = settings.delivery_lease

    async def keep_writing(self) -> None:
        """Make the last writes Redis was away for as soon as it answers again, every ``UNWRITTEN_RETRY``
        seconds, until cancelled: a delivery the vendor took is recorded before the run's lease runs out,
        so no other run takes this one for a dead worker's (which would fail over: a second SMS)."""
        while True:
            await asyncio.sleep(UNWRITTEN_RETRY)
            for otp_id in list(self._unwritten):
                unwritten = self._unwritten.pop(otp_id, None)
                if unwritten is None:
                    continue  # the OTP's next run took it meanwhile
                try:
                    await unwritten.write()
                except DispatcherError:
                    self._unwritten.setdefault(otp_id, unwritten)
                    break  # Redis is still away
                log.info("otp %s: its run's last write, missed while Redis was away, is made", otp_id)

    async def deliver_all(self, jobs: list[SendJob]) -> list[RetryLater | Finished | BaseException | None]:
        """Run a batch of jobs concurrently; a run that raised gives its exception in its place."""
        return await asyncio.gather(*(self.deliver(job) for job in jobs), return_exceptions=True)

    async def deliver(self, job: SendJob) -> RetryLater | Finished | None:
        """Make one pass at the OTP's current send; None when there was nothing (more) to do. A run
        never outlives its lease (by then another run may hold it)."""
        async with self._runs:
            return await asyncio.wait_for(self._deliver(job), self.lease_seconds)

    async def _deliver(self, job: SendJob) -> RetryLater | Finished | None:
        unwritten = self._unwritten.pop(job.otp_id, None)
        if unwritten is not None:
            try:
                await unwritten.write()
            except BaseException:
                self._unwritten[job.otp_id] = unwritten
                raise
        claim = await self._store.claim(job.otp_id, job.job_seq, self.lease_seconds, time.time())
        if claim.kind is ClaimKind.SKIP:
            return None if unwritten is None else unwritten.outcome
        if claim.kind is ClaimKind.BUSY:
            return RetryLater(job, self._settings.busy_retry_delay, claim.expires_at)
        assert claim.state is not None
        if claim.kind is ClaimKind.POISON:
            log.error("otp %s: its delivery runs kept dying; failed for good", job.otp_id)
            return Finished(PostbackEvent.FAILED, claim.state.spec.failure_url is not None)
        try:
            return await self._walk_chain(claim.state, claim.lease, crashed=claim.kind is ClaimKind.CRASHED)
        except BaseException:
            try:
                await self._store.release(job.otp_id, claim.lease)
            except DispatcherError:
                release = partial(self._store.release, job.otp_id, claim.lease)
                self._unwritten.setdefault(job.otp_id, _LastWrite(release, None))
            raise

    async def _walk_chain(self, state: DeliveryState, lease: str, *, crashed: bool) -> RetryLater | Finished | None:
        """Walk the route from where the last run stopped; every way out ends the run (gives up ``lease``)
        in its last write."""
        route = routing.route(self._settings, state.spec.recipient, state.route_first)
        position, tries = state.chain_pos, state.vendor_tries
        if crashed and position < len(route):
            # The last run died mid-way, maybe after its request left: never call that vendor twice for one send.
            position, tries = await self._pass_over(
                state, route, position, AttemptOutcome.OUTCOME_UNKNOWN, "WORKER_LOST"
            )
        while position < len(route):
            vendor = route[position]
            provider = self._providers[vendor.name]
            if time.time() >= state.expires_at:
                await self._store.release(state.otp_id, lease)
                return None
            if not await self._breakers.allow(vendor, time.time()):
                CIRCUIT_OPEN.labels(vendor.name).set(1)
                skipped = AttemptOutcome.VENDOR_UNAVAILABLE
                position, tries = await self._pass_over(state, route, position, skipped, "CIRCUIT_OPEN")
                continue
            try:
                sent, attempt = await self._attempt(provider, state)
            except Rejected as exc:
                await self._breaker(vendor, CallResult.SUCCESS)
                reason = f"rejected by {vendor.name}: {exc.code}"
                await self._store.mark_failed(state.otp_id, state.send_seq, reason, lease)
                return Finished(PostbackEvent.FAILED, state.spec.failure_url is not None)
            except VendorUnavailable:
                await self._breaker(vendor, CallResult.TRIP)
                FAILOVERS.labels(vendor.name).inc()
                position, tries = position + 1, 0
            except ProviderError:
                await self._breaker(vendor, CallResult.FAILURE)
                tries += 1
                if tries < vendor.attempts:
                    countdown = backoff(vendor, tries)
                    job_seq = await self._store.save_progress(
                        state.otp_id, state.send_seq, position, tries, retry_at=time.time() + countdown, lease=lease
                    )
                    if not job_seq:
                        return None  # a resend replaced this send; its own job carries on
                    RETRIES.labels(vendor.name).inc()
                    return RetryLater(SendJob(state.otp_id, job_seq), countdown, state.expires_at)
                FAILOVERS.labels(vendor.name).inc()
                position, tries = position + 1, 0
            else:
                await self._breaker(vendor, CallResult.SUCCESS)
                checked_by_vendor = sent.reference if provider.generates_codes else ""
                finished = Finished(PostbackEvent.DELIVERED, state.spec.success_url is not None)
                record = partial(
                    self._store.mark_delivered,
                    state.otp_id,
                    state.send_seq,
                    checked_by_vendor,
                    attempt,
                    lease,
                    receipt_reference=sent.receipt_reference,
                )
                _say(state.otp_id, attempt)
                try:
                    await record()
                except DispatcherError:
                    self._unwritten[state.otp_id] = _LastWrite(record, finished)
                    raise
                return finished
            await self._store.save_progress(state.otp_id, state.send_seq, position, tries)
        await self._store.mark_failed(state.otp_id, state.send_seq, "every provider of the chain failed", lease)
        log.warning("otp %s: every provider failed", state.otp_id)
        return Finished(PostbackEvent.FAILED, state.spec.failure_url is not None)

    async def _pass_over(
        self,
        state: DeliveryState,
        route: tuple[ProviderSettings, ...],
        position: int,
        outcome: AttemptOutcome,
        error_code: str,
    ) -> tuple[int, int]:
        """Log the vendor at ``position`` as passed over without a call, and move on to the next one;
        returns the new position and tries."""
        vendor = route[position].name
        await self._log_attempt(state, vendor, time.time(), outcome, error_code)
        FAILOVERS.labels(vendor).inc()
        await self._store.save_progress(state.otp_id, state.send_seq, position + 1, 0)
        return position + 1, 0

    async def _breaker(self, vendor: ProviderSettings, outcome: CallResult) -> None:
        state = await self._breakers.record(vendor, outcome, time.time())
        CIRCUIT_OPEN.labels(vendor.name).set(int(state != "closed"))

    async def _attempt(self, provider: Provider, state: DeliveryState) -> tuple[Sent, Attempt]:
        """One vendor call: the vendor's references and the successful attempt (a failure is logged here); the
        attempt awaits its receipt (NONE)."""
        spec, otp_id, code = state.spec, state.otp_id, None
        if not provider.generates_codes:
            code = codes.generate(spec.code_length, spec.otp_type)
            await self._store.add_code_hash(otp_id, codes.digest(self._code_key, otp_id, code))
        expiry = max(1, int(state.expires_at - time.time()))
        started = time.time()
        try:
            if provider.name == state.vendor and state.reference:
                sent = await provider.resend_tracked(state.reference, spec, otp_id=otp_id, expiry=expiry, code=code)
            else:
                sent = await provider.send_tracked(spec, otp_id=otp_id, expiry=expiry, code=code)
        except ProviderError as exc:
            await self._log_attempt(state, provider.name, started, _outcome(exc), exc.code)
            raise
        accepted = _attempt_of(state, provider.name, started, AttemptOutcome.DELIVERED, None)
        return sent, accepted.model_copy(update={"receipt": ReceiptStatus.NONE})

    async def _log_attempt(
        self, state: DeliveryState, vendor: str, started: float, outcome: AttemptOutcome, error_code: str | None
    ) -> None:
        attempt = _attempt_of(state, vendor, started, outcome, error_code)
        await self._store.record_attempt(state.otp_id, attempt)
        _say(state.otp_id, attempt)


def _attempt_of(
    state: DeliveryState, vendor: str, started: float, outcome: AttemptOutcome, error_code: str | None
) -> Attempt:
    return Attempt(
        send_number=state.send_seq,
        vendor=vendor,
        started_at=datetime.fromtimestamp(started, tz=UTC),
        latency_ms=round((time.time() - started) * 1000, 1),
        outcome=outcome,
        error_code=error_code,
    )


def _say(otp_id: str, attempt: Attempt) -> None:
    """Log and count one attempt."""
    ATTEMPTS.labels(attempt.vendor, attempt.outcome.value).inc()
    LATENCY.labels(attempt.vendor).observe(attempt.latency_ms / 1000)
    fields = {
        "otp_id": otp_id,
        "vendor": attempt.vendor,
        "outcome": attempt.outcome.value,
        "latency_ms": attempt.latency_ms,
        "error_code": attempt.error_code,
    }
    log.info(
        "otp %s via %s: %s %s in %.0f ms",
        otp_id,
        attempt.vendor,
        attempt.outcome,
        attempt.error_code or "",
        attempt.latency_ms,
        extra=fields,
    )


def _outcome(exc: ProviderError) -> AttemptOutcome:
    if isinstance(exc, Rejected):
        return AttemptOutcome.REJECTED
    if isinstance(exc, VendorUnavailable):
        return AttemptOutcome.VENDOR_UNAVAILABLE
    if isinstance(exc, OutcomeUnknown):
        return AttemptOutcome.OUTCOME_UNKNOWN
    return AttemptOutcome.TEMPORARY_ERROR
