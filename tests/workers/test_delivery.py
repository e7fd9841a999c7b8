"""The provider chain: backoff, and every branch of one ``Deliverer`` run, in-process.

A real ``OtpStore`` and real ``CircuitBreakers`` on the session's Redis, and the real adapters
(``vendors.build_providers``) calling canned vendors over loopback HTTP. OTPs are made by ``new_otp``
and read back by ``otp_state`` only.

Longer than our ~400-line modules on purpose: every section tests one class and shares these fixtures and
that one place OTPs are made and read; split, the parts would import them from each other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from config import ProviderSettings, Settings
from config.settings import DEFAULT_BUSY_RETRY_DELAY
from devtools.embedded_redis import EmbeddedRedis
from dispatcher.constants import breaker_key, lease_key
from dispatcher.errors import ServiceUnavailable
from dispatcher.schemas import Attempt, AttemptOutcome, OtpStatus, PostbackEvent, SendJob
from dispatcher.sealing import Sealer
from dispatcher.store import FIRST_JOB, MAX_CRASHES, ClaimKind, NewOtp, OtpStore, connect
from tests.lossy_redis import LossyRedis
from tests.support import own_database, wait_for
from tests.vendors.canned import Answer, Canned
from tests.vendors.specs import SPEC
from vendors import build_providers
from workers.attempts import failure_reason
from workers.breaker import CallResult, CircuitBreakers
from workers.delivery import Deliverer, Finished, RetryLater, backoff
from workers.metrics import REGISTRY

SECRET = "delivery-test-secret"
RECIPIENT = "+33612345678"
D7_SEND = "/verify/v1/otp/send-otp"
INBOX = f"/inbox/{RECIPIENT}"
FAST = {"timeout": 2.0, "attempts": 2, "retry_delay": 0.05, "retry_delay_max": 0.1}
VENDOR_NAMES = ("first", "second")
DEAD_LEASE = 0.001
"""Seconds of lease a run that dies takes: it runs out at once, never released."""

VENDOR = ProviderSettings(name="v", kind="console", base_url="http://127.0.0.1:1", retry_delay=1.0, retry_delay_max=8.0)


@pytest.mark.parametrize(("tries", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)])
def test_backoff_doubles_up_to_the_maximum_with_jitter(tries: int, ceiling: float) -> None:
    delays = [backoff(VENDOR, tries) for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 1


# the one place OTPs are made and read ---------------------------------------------------------------


async def new_otp(
    store: OtpStore, *, created_at: float | None = None, resend_delay: int = 60, **spec_fields: Any
) -> str:
    """A new OTP awaiting its first send (job ``FIRST_JOB``) to ``RECIPIENT``, expiring 600 s after ``created_at``
    (``spec_fields`` change its ``OtpSpec``)."""
    otp_id = str(uuid.uuid4())
    spec = SPEC.model_copy(update={"recipient": RECIPIENT, "resend_delay": resend_delay, **spec_fields})
    created_at = time.time() if created_at is None else created_at
    await store.create(NewOtp(otp_id, spec, recipient_index="index", prefix="+33612", created_at=created_at))
    return otp_id


@dataclass(frozen=True)
class OtpState:
    """What the store says of an OTP's delivery."""

    status: OtpStatus
    delivered_by: str | None
    failure_reason: str | None
    attempts: list[tuple[str, AttemptOutcome, str | None]]
    """(vendor, outcome, error code) of every attempt, oldest first."""
    chain_pos: int
    vendor_tries: int


async def otp_state(store: OtpStore, otp_id: str) -> OtpState:
    report = await store.report(otp_id, time.time())
    state = await store.delivery_state(otp_id)
    assert state is not None
    return OtpState(
        status=report.status,
        delivered_by=report.delivered_by,
        failure_reason=report.failure_reason,
        attempts=[(a.vendor, a.outcome, a.error_code) for a in report.attempts],
        chain_pos=state.chain_pos,
        vendor_tries=state.vendor_tries,
    )


# fixtures ------------------------------------------------------------------------------------------


@dataclass
class Vendor:
    """A canned vendor server and the provider settings that point at it."""

    settings: ProviderSettings
    canned: Canned

    @property
    def name(self) -> str:
        return self.settings.name

    def answer(self, path: str, **answer: Any) -> None:
        self.canned.answers[path] = Answer(**answer)

    @property
    def calls(self) -> int:
        return len(self.canned.requests)


VendorFactory = Callable[..., Awaitable[Vendor]]
DelivererFactory = Callable[..., Deliverer]


@pytest.fixture
async def vendor() -> AsyncIterator[VendorFactory]:
    """Starts canned vendors: ``await vendor(name, kind, **settings)``; a console vendor's inbox and a D7
    vendor's send answer 200 until the test says otherwise."""
    servers: list[TestServer] = []

    async def start(name: str, kind: str = "console", **settings: Any) -> Vendor:
        canned = Canned()
        server = TestServer(canned.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        credentials = {"api_token": "token"} if kind == "d7" else {}
        provider = ProviderSettings.model_validate(
            {"name": name, "kind": kind, "base_url": str(server.make_url("")), **FAST, **credentials, **settings}
        )
        made = Vendor(provider, canned)
        made.answer(D7_SEND if kind == "d7" else INBOX, status=200, body={"otp_id": "d7-reference"})
        return made

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def aio_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The session's Redis, on a database of its own: no lease or breaker left here delays the stack's tests."""
    client = connect(own_database(redis_url), 1.0)
    yield client
    await client.aclose()


@pytest.fixture
def store(aio_redis: aioredis.Redis) -> OtpStore:
    return OtpStore(aio_redis, Sealer(SECRET), grace=60)


@pytest.fixture
async def deliverer(aio_redis: aioredis.Redis, store: OtpStore) -> AsyncIterator[DelivererFactory]:
    """``deliverer(*vendors)``: a Deliverer with that chain over ``store``, its breakers on ``aio_redis``
    (or on the ``store`` and ``redis`` given). The vendors' circuits start closed (their state outlives a test)."""
    await aio_redis.delete(*(breaker_key(name) for name in VENDOR_NAMES))
    async with aiohttp.ClientSession() as session:

        def build(*vendors: Vendor, store: OtpStore = store, redis: aioredis.Redis = aio_redis) -> Deliverer:
            assert all(v.name in VENDOR_NAMES for v in vendors)
            settings = Settings(redis_url="redis://unused", secret_key=SECRET, providers=[v.settings for v in vendors])
            return Deliverer(settings, store, CircuitBreakers(redis), build_providers(settings, session))

        yield build


async def die_mid_run(store: OtpStore, aio_redis: aioredis.Redis, otp_id: str, runs: int = 1) -> None:
    """``runs`` runs of the OTP's job that claimed it and died: their lease ran out, never released."""
    for _ in range(runs):
        claim = await store.claim(otp_id, FIRST_JOB, DEAD_LEASE, time.time())
        assert claim.kind in (ClaimKind.RUN, ClaimKind.CRASHED)

        async def lease_gone() -> bool | None:
            return True if not await aio_redis.exists(lease_key(otp_id)) else None

        await wait_for(lease_gone)


# delivery ------------------------------------------------------------------------------------------


async def test_a_send_is_delivered_by_the_first_vendor_and_its_attempt_logged(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first, second = await vendor("first"), await vendor("second")
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(store, otp_id)
    assert (state.status, state.delivered_by) == (OtpStatus.OPEN, "first")
    assert state.attempts == [("first", AttemptOutcome.DELIVERED, None)]
    assert (first.calls, second.calls) == (1, 0)


async def test_a_temporary_error_asks_for_a_retry_after_the_vendors_backoff_with_the_progress_saved(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first = await vendor("first", attempts=3)
    first.answer(INBOX, status=503)
    otp_id = await new_otp(store)

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert isinstance(outcome, RetryLater)
    assert outcome.job == SendJob(otp_id, FIRST_JOB + 1)
    assert first.settings.retry_delay / 2 <= outcome.countdown <= first.settings.retry_delay
    state = await otp_state(store, otp_id)
    assert (state.chain_pos, state.vendor_tries) == (0, 1)
    assert state.attempts == [("first", AttemptOutcome.TEMPORARY_ERROR, "HTTP_503")]


async def test_a_vendor_that_fails_all_its_tries_is_failed_over_to_the_next(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first, second = await vendor("first", attempts=2), await vendor("second")
    first.answer(INBOX, status=503)
    chain = deliverer(first, second)
    otp_id = await new_otp(store)
    retry = await chain.deliver(SendJob(otp_id, FIRST_JOB))
    assert isinstance(retry, RetryLater)

    outcome = await chain.deliver(retry.job)

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(store, otp_id)
    assert state.delivered_by == "second"
    assert [(vendor, outcome) for vendor, outcome, _ in state.attempts] == [
        ("first", AttemptOutcome.TEMPORARY_ERROR),
        ("first", AttemptOutcome.TEMPORARY_ERROR),
        ("second", AttemptOutcome.DELIVERED),
    ]


async def test_an_unavailable_vendor_is_failed_over_at_once_and_its_circuit_opened(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first", "d7", attempts=3), await vendor("second")
    first.answer(D7_SEND, status=402, body={"detail": {"code": "INSUFFICIENT_CREDIT", "message": "no credit"}})
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(store, otp_id)
    assert state.attempts == [
        ("first", AttemptOutcome.VENDOR_UNAVAILABLE, "INSUFFICIENT_CREDIT"),
        ("second", AttemptOutcome.DELIVERED, None),
    ]
    assert first.calls == 1
    assert await CircuitBreakers(aio_redis).state("first") == "open"


@pytest.mark.parametrize("status", [400, 422])
async def test_a_rejected_request_fails_the_otp_with_the_reason_and_no_failover(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, status: int
) -> None:
    first, second = await vendor("first", "d7"), await vendor("second")
    first.answer(D7_SEND, status=status, body={"detail": {"code": "INVALID_RECIPIENT", "message": "bad number"}})
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)
    state = await otp_state(store, otp_id)
    assert (state.status, state.failure_reason) == (OtpStatus.FAILED, "rejected by first: INVALID_RECIPIENT")
    assert state.attempts == [("first", AttemptOutcome.REJECTED, "INVALID_RECIPIENT")]
    assert second.calls == 0


async def test_a_vendor_whose_circuit_is_open_is_skipped_without_a_call(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first"), await vendor("second")
    await CircuitBreakers(aio_redis).record(first.settings, CallResult.TRIP, time.time())  # another worker
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(store, otp_id)
    assert state.attempts == [
        ("first", AttemptOutcome.VENDOR_UNAVAILABLE, "CIRCUIT_OPEN"),
        ("second", AttemptOutcome.DELIVERED, None),
    ]
    assert first.calls == 0


async def test_when_every_vendor_fails_the_otp_is_failed_with_every_attempt_logged(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first, second = await vendor("first", attempts=1), await vendor("second", attempts=1)
    first.answer(INBOX, status=503)
    second.answer(INBOX, status=500)
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)
    state = await otp_state(store, otp_id)
    reason = "every vendor of the route failed: first: HTTP_503; second: HTTP_500"
    assert (state.status, state.failure_reason) == (OtpStatus.FAILED, reason)
    assert state.attempts == [
        ("first", AttemptOutcome.TEMPORARY_ERROR, "HTTP_503"),
        ("second", AttemptOutcome.TEMPORARY_ERROR, "HTTP_500"),
    ]


# runs that died, overlap, stale and expired jobs ---------------------------------------------------


async def test_after_a_run_died_its_vendor_is_logged_worker_lost_and_never_called_again(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first"), await vendor("second")
    otp_id = await new_otp(store)
    await die_mid_run(store, aio_redis, otp_id)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(store, otp_id)
    assert state.attempts == [
        ("first", AttemptOutcome.OUTCOME_UNKNOWN, "WORKER_LOST"),
        ("second", AttemptOutcome.DELIVERED, None),
    ]
    assert first.calls == 0


async def test_an_otp_whose_runs_keep_dying_is_failed_without_a_vendor_call(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first = await vendor("first")
    otp_id = await new_otp(store)
    await die_mid_run(store, aio_redis, otp_id, runs=MAX_CRASHES)

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)
    state = await otp_state(store, otp_id)
    assert state.status == OtpStatus.FAILED
    assert f"died {MAX_CRASHES} times" in (state.failure_reason or "")
    assert first.calls == 0


async def test_an_otp_another_run_is_sending_is_looked_at_again_later(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first = await vendor("first")
    otp_id = await new_otp(store)
    other = await store.claim(otp_id, FIRST_JOB, 30.0, time.time())

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == RetryLater(SendJob(otp_id, FIRST_JOB), DEFAULT_BUSY_RETRY_DELAY, other.expires_at)
    assert first.calls == 0
    await store.release(otp_id, other.lease)


async def test_a_job_a_newer_one_replaced_does_nothing(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first = await vendor("first")
    otp_id = await new_otp(store, resend_delay=0)
    await store.resend(otp_id, time.time())  # the resend's job is the newer one

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome is None
    assert (await otp_state(store, otp_id)).attempts == []
    assert first.calls == 0


async def test_an_expired_otp_is_not_sent(vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore) -> None:
    first = await vendor("first")
    otp_id = await new_otp(store, created_at=time.time() - 601)

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome is None
    state = await otp_state(store, otp_id)
    assert (state.status, state.attempts) == (OtpStatus.EXPIRED, [])
    assert first.calls == 0


# the last write Redis was away for -----------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, which it stops and starts again (same port, same data)."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


async def test_a_delivery_whose_record_redis_missed_is_recorded_on_the_next_run_without_a_second_call(
    vendor: VendorFactory, deliverer: DelivererFactory, own_redis: EmbeddedRedis
) -> None:
    client = connect(own_redis.url, 1.0)
    own_store = OtpStore(client, Sealer(SECRET), grace=60)
    at_vendor = asyncio.Event()
    first = await vendor("first")
    first.answer(INBOX, status=200, hold=at_vendor)
    chain = deliverer(first, store=own_store, redis=client)
    otp_id = await new_otp(own_store)
    run = asyncio.create_task(chain.deliver(SendJob(otp_id, FIRST_JOB)))
    await wait_for(lambda: _true_when(first.calls == 1))
    await asyncio.to_thread(own_redis.stop)
    at_vendor.set()  # the vendor takes the send while Redis is away
    with pytest.raises(ServiceUnavailable):
        await run
    await asyncio.to_thread(own_redis.start)

    outcome = await chain.deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(own_store, otp_id)
    assert (state.delivered_by, state.attempts) == ("first", [("first", AttemptOutcome.DELIVERED, None)])
    assert first.calls == 1
    await client.aclose()


@dataclass
class LossyRun:
    """A chain of one vendor (``first``, answering 200) whose worker reaches Redis through ``lossy``; its store
    holds the scripts already (an OTP went through), so a claim runs at once."""

    lossy: LossyRedis
    store: OtpStore
    chain: Deliverer
    first: Vendor


@pytest.fixture
async def lossy_run(
    vendor: VendorFactory, deliverer: DelivererFactory, own_redis: EmbeddedRedis
) -> AsyncIterator[LossyRun]:
    lossy = LossyRedis(own_redis.port)
    await lossy.reopen()
    client = connect(lossy.url, 1.0)
    own_store = OtpStore(client, Sealer(SECRET), grace=60)
    first = await vendor("first")
    first.answer(INBOX, status=200)
    chain = deliverer(first, store=own_store, redis=client)
    await chain.deliver(SendJob(await new_otp(own_store), FIRST_JOB))
    yield LossyRun(lossy, own_store, chain, first)
    await client.aclose()
    await lossy.close()


async def test_a_claim_whose_answer_redis_lost_is_given_back_so_the_next_run_is_no_dead_runs_successor(
    lossy_run: LossyRun, own_redis: EmbeddedRedis
) -> None:
    # Given a worker whose claim Redis made, then went away before answering (the port refuses connections)
    otp_id = await new_otp(lossy_run.store)
    lossy_run.lossy.lose_next_answer()
    with pytest.raises(ServiceUnavailable):
        await lossy_run.chain.deliver(SendJob(otp_id, FIRST_JOB))
    with own_redis.client() as direct:
        assert direct.exists(lease_key(otp_id))  # the claim was made: the lease is held

    # When Redis answers again and the job runs again
    await lossy_run.lossy.reopen()
    outcome = await lossy_run.chain.deliver(SendJob(otp_id, FIRST_JOB))

    # Then the run gave its lease back first: the send goes to the first vendor, not taken for a dead run's
    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(lossy_run.store, otp_id)
    assert state.attempts == [("first", AttemptOutcome.DELIVERED, None)]
    assert lossy_run.first.calls == 2


async def test_a_claim_sent_again_after_its_answer_was_lost_runs_as_the_first_one_did(lossy_run: LossyRun) -> None:
    # Given a worker whose link to Redis is reset as the answer to its claim comes back (the client sends the
    # claim once more, on a new connection)
    otp_id = await new_otp(lossy_run.store)
    lossy_run.lossy.lose_next_answer(go_away=False)

    # When the job runs
    outcome = await lossy_run.chain.deliver(SendJob(otp_id, FIRST_JOB))

    # Then the claim sent again answers as the first did (not busy with its own lease): delivered at once
    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    state = await otp_state(lossy_run.store, otp_id)
    assert state.attempts == [("first", AttemptOutcome.DELIVERED, None)]


async def _true_when(condition: bool) -> bool | None:
    return True if condition else None


# what the spec asks for -----------------------------------------------------------------------------

MESSAGE_CENTRAL = {"login": "C-1", "password": "secret", "vendor_text": True}
OCTOPUSH = {"login": "me@example.com", "password": "secret"}


@pytest.mark.parametrize(
    ("kind", "credentials", "spec_fields"),
    [
        ("messagecentral", MESSAGE_CENTRAL, {"otp_type": "alphanumeric", "code_length": 4}),
        ("messagecentral", MESSAGE_CENTRAL, {"otp_type": "alpha", "code_length": 5}),
        ("messagecentral", {**MESSAGE_CENTRAL, "vendor_text": False}, {}),
        ("octopush", OCTOPUSH, {"channel": "WhatsApp"}),
        ("octopush", OCTOPUSH, {"content": None, "template_id": 25}),
    ],
)
async def test_a_vendor_that_cannot_honour_the_spec_is_passed_over_without_a_call(
    vendor: VendorFactory,
    deliverer: DelivererFactory,
    store: OtpStore,
    kind: str,
    credentials: dict[str, Any],
    spec_fields: dict[str, Any],
) -> None:
    first, second = await vendor("first", kind, **credentials), await vendor("second", vendor_text=True)
    otp_id = await new_otp(store, **spec_fields)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    assert (await otp_state(store, otp_id)).attempts == [
        ("first", AttemptOutcome.VENDOR_UNAVAILABLE, "CANNOT_HONOUR"),
        ("second", AttemptOutcome.DELIVERED, None),
    ]
    assert first.calls == 0


async def test_when_no_vendor_of_the_route_can_honour_the_otp_it_fails_saying_so(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore
) -> None:
    first = await vendor("first", "messagecentral", **MESSAGE_CENTRAL)
    otp_id = await new_otp(store, otp_type="alphanumeric", code_length=4)

    outcome = await deliverer(first).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)
    state = await otp_state(store, otp_id)
    reason = "no vendor of the route can honour this OTP: first: CANNOT_HONOUR (no alphanumeric codes)"
    assert (state.status, state.failure_reason) == (OtpStatus.FAILED, reason)


def test_a_failure_reason_names_each_vendor_with_its_codes_in_order_counting_repeats() -> None:
    def attempt(vendor: str, code: str) -> Attempt:
        return Attempt(
            send_number=1,
            vendor=vendor,
            started_at=datetime.now(UTC),
            latency_ms=1.0,
            outcome=AttemptOutcome.TEMPORARY_ERROR,
            error_code=code,
        )

    attempts = [attempt("d7", "HTTP_503")] * 3 + [attempt("octopush", "OCTOPUSH_103"), attempt("mc", "CANNOT_HONOUR")]

    reason = failure_reason(attempts, {"mc": "no WhatsApp channel"})

    tried = "d7: HTTP_503 x3; octopush: OCTOPUSH_103; mc: CANNOT_HONOUR (no WhatsApp channel)"
    assert reason == f"every vendor of the route failed: {tried}"


# open circuits -------------------------------------------------------------------------------------


async def trip(aio_redis: aioredis.Redis, *vendors: Vendor) -> None:
    """Open the vendors' circuits, as another worker would have."""
    for each in vendors:
        await CircuitBreakers(aio_redis).record(each.settings, CallResult.TRIP, time.time())


async def test_when_only_open_circuits_stand_in_the_way_the_send_waits_for_the_first_cool_down(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first", breaker_cooldown=30), await vendor("second", breaker_cooldown=3)
    await trip(aio_redis, first, second)
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert isinstance(outcome, RetryLater)
    assert 2 < outcome.countdown <= 3
    assert outcome.job.job_seq > FIRST_JOB
    state = await otp_state(store, otp_id)
    assert (state.status, state.chain_pos, first.calls + second.calls) == (OtpStatus.OPEN, 0, 0)


async def test_a_send_that_waited_for_a_circuit_is_delivered_by_the_probe(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first = await vendor("first", breaker_cooldown=0.05)
    await trip(aio_redis, first)
    otp_id = await new_otp(store)
    chain = deliverer(first)
    waited = await chain.deliver(SendJob(otp_id, FIRST_JOB))
    assert isinstance(waited, RetryLater)

    async def cooled_down() -> bool | None:
        return True if time.time() >= await CircuitBreakers(aio_redis).next_call_at(first.settings) else None

    await wait_for(cooled_down)
    outcome = await chain.deliver(waited.job)

    assert outcome == Finished(PostbackEvent.DELIVERED, postback=False)
    assert first.calls == 1


async def test_an_otp_that_expires_before_any_circuit_reopens_fails_naming_the_open_circuits(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first", breaker_cooldown=30), await vendor("second", breaker_cooldown=30)
    await trip(aio_redis, first, second)
    otp_id = await new_otp(store, created_at=time.time() - 590)  # 10 s left

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)
    reason = "every vendor of the route failed: first: CIRCUIT_OPEN; second: CIRCUIT_OPEN"
    assert (await otp_state(store, otp_id)).failure_reason == reason


async def test_an_otp_with_a_real_failure_among_open_circuits_fails_without_waiting(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first", attempts=1), await vendor("second")
    first.answer(INBOX, status=503)
    await trip(aio_redis, second)
    otp_id = await new_otp(store)

    outcome = await deliverer(first, second).deliver(SendJob(otp_id, FIRST_JOB))

    assert outcome == Finished(PostbackEvent.FAILED, postback=False)


# metrics -------------------------------------------------------------------------------------------


async def test_a_vendor_passed_over_is_counted_as_a_skip_not_as_a_call(
    vendor: VendorFactory, deliverer: DelivererFactory, store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    first, second = await vendor("first"), await vendor("second")
    await trip(aio_redis, first)

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"vendor": "first", **labels}) or 0.0

    skips = sample("otp_vendor_skips_total", reason="CIRCUIT_OPEN")
    calls = sample("otp_vendor_attempts_total", outcome="VENDOR_UNAVAILABLE")
    latencies = sample("otp_vendor_latency_seconds_count")

    await deliverer(first, second).deliver(SendJob(otp_id := await new_otp(store), FIRST_JOB))

    assert otp_id
    assert sample("otp_vendor_skips_total", reason="CIRCUIT_OPEN") == skips + 1
    assert sample("otp_vendor_attempts_total", outcome="VENDOR_UNAVAILABLE") == calls
    assert sample("otp_vendor_latency_seconds_count") == latencies
