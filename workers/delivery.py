"""The provider chain: deliver the current send of one OTP, vendor after vendor, deciding when to retry.

For each vendor of the route (``routing.route``), in order: a vendor that cannot honour the OTP's spec
(``Provider.cannot_honour``: channel, code type and length, message) and a vendor whose circuit is open are
passed over without a call (logged as attempts, ``CANNOT_HONOUR`` and ``CIRCUIT_OPEN``), a temporary failure
is retried on the same vendor after a backoff (up to that vendor's ``attempts``), an unavailable vendor is
skipped at once, a rejection fails the OTP. When the route is used up, the OTP fails with a reason naming
each vendor and its errors (``failure_reason``), unless no vendor was called and some were passed over only
for an open circuit: then the send waits for the earliest circuit to let a call through, if the OTP lives
that long. Progress is kept in the OTP record, so a retried or redelivered job resumes where the
last one stopped, and a send already delivered is never delivered again. Each job carries a job number:
the store lets only the newest job of an OTP run (``OtpStore.claim``), so a job the broker hands out
twice calls no vendor twice. A run that died mid-way (worker killed) is treated as an attempt whose
outcome is unknown: the next run fails over rather than call that vendor again. A run whose last write
Redis was away for is not dead: the next run of the OTP in the same process makes that write first (a
delivery the vendor took is recorded, not sent again). The retry itself is scheduled by the task
(``RetryLater``), the only place that retries.

A little over our ~400-line guide on purpose: one class walking one run, whose steps share its state; what can
stand alone already does (``routing``, ``attempts``, ``breaker``, ``scoreboard``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial

from config import ProviderSettings, Settings
from dispatcher import codes
from dispatcher.errors import DispatcherError
from dispatcher.schemas import (
    Attempt,
    AttemptOutcome,
    DeadlineJob,
    PostbackEvent,
    ReceiptStatus,
    RoutingReason,
    SendJob,
    StepEnd,
)
from dispatcher.store import MAX_REDIS_CONNECTIONS, ClaimKind, DeliveryState, OtpStore, StepKind
from vendors import Provider, ProviderError, Rejected, VendorUnavailable
from vendors.receipts import Sent
from workers import routing
from workers.attempts import CANNOT_HONOUR, CIRCUIT_OPEN, WORKER_LOST, attempt_of, failure_reason, outcome_of, say
from workers.breaker import CallResult, CircuitBreakers
from workers.metrics import FAILOVERS, RETRIES, ROUTE_RECEIPTS, ROUTE_SENDS, ROUTING_DECISIONS, STEP_ADVANCES
from workers.routing import Route
from workers.scoreboard import Scoreboard

UNWRITTEN_RETRY = 0.5
"""Seconds between two tries of the last writes Redis was away for."""
MAX_RUNS = MAX_REDIS_CONNECTIONS * 3 // 4
"""OTPs one process delivers at once; the others of its batches wait their turn, so the process's Redis
pool is never exhausted (each run uses one connection at a time)."""

MIN_CIRCUIT_WAIT = 0.1
"""Seconds a send that waits for a circuit waits at least (the circuit may have closed meanwhile)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finished:
    """The send reached its final outcome; ``postback`` when the OTP asked to be told of it; ``deadline`` when
    its workflow step waits for a delivered receipt until ``deadline_at`` (queue the deadline job)."""

    event: PostbackEvent
    postback: bool
    deadline: DeadlineJob | None = None
    deadline_at: float = 0.0
    expires_at: float = 0.0


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
        adaptive = any(policy.policy == "adaptive" for policy in settings.route_policies.values())
        self._scoreboard = Scoreboard(store, settings.routing, adaptive)
        self._rng = random.Random()
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
        async with self._runs, asyncio.timeout(self.lease_seconds):
            return await self._deliver(job)

    async def _deliver(self, job: SendJob) -> RetryLater | Finished | None:
        unwritten = self._unwritten.pop(job.otp_id, None)
        if unwritten is not None:
            try:
                await unwritten.write()
            except BaseException:
                self._unwritten[job.otp_id] = unwritten
                raise
        token = secrets.token_hex(8)
        try:
            claim = await self._store.claim(job.otp_id, job.job_seq, self.lease_seconds, time.time(), token)
        except DispatcherError:
            # Redis may have made the claim and gone before answering: give the lease back once it answers, if this
            # run holds it, so the next run is not taken for a dead one's (which would fail over).
            release = partial(self._store.release, job.otp_id, token, only_if_held=True)
            self._unwritten.setdefault(job.otp_id, _LastWrite(release, None))
            raise
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
        state, decided = await self._step(state)
        route = decided.vendors
        position, tries = state.chain_pos, state.vendor_tries
        if crashed and position < len(route):
            # The last run died mid-way, maybe after its request left: never call that vendor twice for one send.
            position, tries = await self._pass_over(
                state, decided, position, AttemptOutcome.OUTCOME_UNKNOWN, WORKER_LOST
            )
        while position < len(route):
            vendor = route[position]
            provider = self._providers[vendor.name]
            if time.time() >= state.expires_at:
                await self._store.release(state.otp_id, lease)
                return None
            skipped = AttemptOutcome.VENDOR_UNAVAILABLE
            if provider.cannot_honour(state.spec) is not None:  # before the breaker: it would take the probe
                position, tries = await self._pass_over(state, decided, position, skipped, CANNOT_HONOUR)
                continue
            if not await self._breakers.allow(vendor, time.time()):
                position, tries = await self._pass_over(state, decided, position, skipped, CIRCUIT_OPEN)
                continue
            try:
                sent, attempt = await self._attempt(provider, state, decided.reasons[position])
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
                finished = self._delivered(state)
                record = partial(self._mark_delivered, state, attempt, lease, checked_by_vendor, sent, finished)
                say(state.otp_id, attempt)
                ROUTE_SENDS.labels(vendor.name, attempt.channel or state.spec.channel, state.country).inc()
                try:
                    await record()
                except DispatcherError:
                    self._unwritten[state.otp_id] = _LastWrite(record, finished)
                    raise
                return finished
            await self._store.save_progress(state.otp_id, state.send_seq, position, tries)
        return await self._route_used_up(state, route, lease)

    async def _mark_delivered(
        self, state: DeliveryState, attempt: Attempt, lease: str, checked_by_vendor: str, sent: Sent, finished: Finished
    ) -> None:
        """Record the attempt a vendor accepted; a receipt that came before it and that it took is counted here
        (``otp_route_receipts``: the API counts the others)."""
        marked = await self._store.mark_delivered(
            state.otp_id,
            state.send_seq,
            checked_by_vendor,
            attempt,
            lease,
            receipt_reference=sent.receipt_reference,
            deadline_at=finished.deadline_at,
        )
        if marked.early_receipt is not None:
            channel = attempt.channel or state.spec.channel
            ROUTE_RECEIPTS.labels(attempt.vendor, channel, state.country, marked.early_receipt.value).inc()

    async def _route_used_up(
        self, state: DeliveryState, route: tuple[ProviderSettings, ...], lease: str
    ) -> RetryLater | Finished | None:
        """Every vendor of the route was tried or passed over: wait for a circuit, or fail the OTP saying why."""
        attempts = await self._store.send_attempts(state.otp_id, state.send_seq)
        codes_seen = {attempt.error_code for attempt in attempts}
        if codes_seen and codes_seen <= {CIRCUIT_OPEN, CANNOT_HONOUR} and CIRCUIT_OPEN in codes_seen:
            countdown = await self._circuit_wait(state, route)
            if countdown is not None:
                job_seq = await self._store.save_progress(
                    state.otp_id, state.send_seq, 0, 0, retry_at=time.time() + countdown, lease=lease
                )
                if not job_seq:
                    return None  # a resend replaced this send; its own job carries on
                log.info("otp %s: only open circuits in its way; sent again in %.1f s", state.otp_id, countdown)
                return RetryLater(SendJob(state.otp_id, job_seq), countdown, state.expires_at)
        why_not = {vendor.name: self._providers[vendor.name].cannot_honour(state.spec) for vendor in route}
        reason = failure_reason(attempts, {name: why for name, why in why_not.items() if why})
        workflow = self._settings.workflow(state.workflow)
        if state.step < workflow.last_step:
            answer = await self._store.end_step(
                state.otp_id, StepEnd.FAILED, workflow.last_step, time.time(), send_seq=state.send_seq, lease=lease
            )
            if answer.kind is StepKind.ADVANCED:
                STEP_ADVANCES.labels(StepEnd.FAILED.value).inc()
                log.info(
                    "otp %s: step %d found no vendor (%s); step %d goes out",
                    state.otp_id,
                    state.step,
                    reason,
                    answer.step,
                )
                return RetryLater(SendJob(state.otp_id, answer.job_seq), 0, answer.expires_at)
        await self._store.mark_failed(state.otp_id, state.send_seq, reason, lease)
        log.warning("otp %s: failed: %s", state.otp_id, reason)
        return Finished(PostbackEvent.FAILED, state.spec.failure_url is not None)

    async def _step(self, state: DeliveryState) -> tuple[DeliveryState, Route]:
        """The OTP's current workflow step: its spec on the step's channel, and its route (``routing.decide``, once
        per send: a later run of the send walks the route its first run kept). Without a configured workflow: the
        spec as asked and the country route. A step that names no vendor leaves out the vendors that took an
        earlier send of this OTP on the same channel without a delivered receipt. Without a workflow, the vendor
        that took the previous send leads a resend, unless its receipts reach us and none confirmed that send: then
        it is tried last. A route that follows from receipts is kept (a receipt may come between two runs of the
        send)."""
        recipient = state.spec.recipient
        step, stepped = None, state
        if state.workflow:
            workflow = self._settings.workflow(state.workflow)
            step = workflow.steps[min(state.step, workflow.last_step)]
            channel = workflow.channel(state.step, state.spec.channel)
            stepped = replace(state, spec=state.spec.model_copy(update={"channel": channel}))
        kept = routing.decided(self._settings, recipient, state.routing, state.send_seq)
        if kept is not None:
            return stepped, kept
        channel = stepped.spec.channel
        first, last, unconfirmed = state.route_first, "", frozenset[str]()
        if step is not None and step.vendor is None:
            unconfirmed = await self._unconfirmed(state, channel)
        elif step is None and self._receipts_reach_us(first) and first in await self._unconfirmed(state, channel):
            first, last = "", first
        board = await self._scoreboard.board()
        route = routing.decide(
            self._settings, recipient, channel, first, step, board, self._rng, exclude=unconfirmed, last=last
        )
        if not route.fixed or unconfirmed or last:
            await self._store.save_route(state.otp_id, state.send_seq, route.dumps(state.send_seq))
        if route.vendors:
            lead, reason = route.vendors[0].name, route.reasons[0]
            why = routing.why_first(reason, lead, state.route_first)
            ROUTING_DECISIONS.labels(reason.policy, state.country, channel, lead, why).inc()
        return stepped, route

    async def _unconfirmed(self, state: DeliveryState, channel: str) -> frozenset[str]:
        attempts = await self._store.logged_attempts(state.otp_id)
        return routing.unconfirmed(attempts, state.send_seq, channel, state.spec.channel)

    def _receipts_reach_us(self, vendor: str) -> bool:
        provider = self._providers.get(vendor)
        return provider is not None and provider.receipts_reach_us

    def _delivered(self, state: DeliveryState) -> Finished:
        """The outcome of a send a vendor took: with the workflow step's deadline when another step follows."""
        finished = Finished(PostbackEvent.DELIVERED, state.spec.success_url is not None)
        if not state.workflow:
            return finished
        deadline = self._settings.workflow(state.workflow).deadline(state.step, state.spec.channel)
        if deadline is None:
            return finished
        job = DeadlineJob(state.otp_id, state.step, state.send_seq)
        return replace(finished, deadline=job, deadline_at=time.time() + deadline, expires_at=state.expires_at)

    async def _circuit_wait(self, state: DeliveryState, route: tuple[ProviderSettings, ...]) -> float | None:
        """Seconds until the first circuit of the route lets a call through to a vendor that can honour the
        OTP (the walk then starts over), or None when the OTP expires before that."""
        now = time.time()
        able = [vendor for vendor in route if self._providers[vendor.name].cannot_honour(state.spec) is None]
        due = min([await self._breakers.next_call_at(vendor) for vendor in able], default=now)
        countdown = min(max(due - now, MIN_CIRCUIT_WAIT), self._settings.visibility_timeout / 2)
        return countdown if now + countdown < state.expires_at else None

    async def _pass_over(
        self,
        state: DeliveryState,
        route: Route,
        position: int,
        outcome: AttemptOutcome,
        error_code: str,
    ) -> tuple[int, int]:
        """Log the vendor at ``position`` as passed over without a call, and move on to the next one;
        returns the new position and tries."""
        vendor = route.vendors[position].name
        await self._log_attempt(state, vendor, time.time(), outcome, error_code, route.reasons[position])
        FAILOVERS.labels(vendor).inc()
        await self._store.save_progress(state.otp_id, state.send_seq, position + 1, 0)
        return position + 1, 0

    async def _breaker(self, vendor: ProviderSettings, outcome: CallResult) -> None:
        await self._breakers.record(vendor, outcome, time.time())

    async def _attempt(self, provider: Provider, state: DeliveryState, reason: RoutingReason) -> tuple[Sent, Attempt]:
        """One vendor call: the vendor's references and the successful attempt (a failure is logged here); the
        attempt awaits its receipt (NONE). ``reason``: why the route tried this vendor there."""
        spec, otp_id, code = state.spec, state.otp_id, None
        if not provider.generates_codes:
            code = codes.generate(spec.code_length, spec.otp_type)
            await self._store.add_code_hash(
                otp_id, codes.digest(self._code_key, otp_id, code), state.send_seq, provider.name
            )
        expiry = max(1, int(state.expires_at - time.time()))
        started = time.time()
        try:
            if provider.name == state.vendor and state.reference:
                sent = await provider.resend_tracked(state.reference, spec, otp_id=otp_id, expiry=expiry, code=code)
            else:
                sent = await provider.send_tracked(spec, otp_id=otp_id, expiry=expiry, code=code)
        except ProviderError as exc:
            await self._log_attempt(state, provider.name, started, outcome_of(exc), exc.code, reason)
            raise
        accepted = attempt_of(state, provider.name, started, AttemptOutcome.DELIVERED, None, reason)
        return sent, accepted.model_copy(update={"receipt": ReceiptStatus.NONE})

    async def _log_attempt(
        self,
        state: DeliveryState,
        vendor: str,
        started: float,
        outcome: AttemptOutcome,
        error_code: str | None,
        reason: RoutingReason,
    ) -> None:
        attempt = attempt_of(state, vendor, started, outcome, error_code, reason)
        await self._store.record_attempt(state.otp_id, attempt)
        say(state.otp_id, attempt)
