"""The ``Deliverer`` on a workflow step, in-process: a real ``OtpStore`` on the session's Redis and canned
vendors over loopback HTTP. Which vendors a step may use, on which channel, and what its send returns."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from config import ProviderSettings, Settings
from dispatcher.constants import breaker_key
from dispatcher.schemas import AttemptOutcome, SendJob, StepEnd
from dispatcher.sealing import Sealer
from dispatcher.store import FIRST_JOB, NewOtp, OtpStore, StepKind, connect
from tests.support import own_database
from tests.vendors.canned import Answer, Canned
from tests.vendors.specs import SPEC
from vendors import build_providers
from workers.breaker import CircuitBreakers
from workers.delivery import Deliverer, Finished, RetryLater

SECRET = "workflow-delivery-secret"
RECIPIENT = "+33612345678"
FAST = {"timeout": 2.0, "attempts": 1, "retry_delay": 0.05, "retry_delay_max": 0.1}
NAMES = ("wf-console", "wf-spare", "wf-octopush")


@pytest.fixture
async def servers() -> AsyncIterator[list[ProviderSettings]]:
    """Three vendors, in this chain order, answering every call 200: two consoles (SMS, WhatsApp) and an
    Octopush (SMS only)."""
    started = []
    providers = []
    for name, kind in zip(NAMES, ("console", "console", "octopush"), strict=True):
        canned = Canned(default=Answer(status=200, body={"ticket_number": "sms_0123456789abc"}))
        server = TestServer(canned.app(), host="127.0.0.1")
        await server.start_server()
        started.append(server)
        credentials = {"login": "me", "password": "key"} if kind == "octopush" else {}
        providers.append(
            ProviderSettings.model_validate(
                {"name": name, "kind": kind, "base_url": str(server.make_url("")), **FAST, **credentials}
            )
        )
    yield providers
    for server in started:
        await server.close()


@pytest.fixture
async def aio_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(own_database(redis_url), 1.0)
    await client.delete(*(breaker_key(name) for name in NAMES))
    yield client
    await client.aclose()


@pytest.fixture
def store(aio_redis: aioredis.Redis) -> OtpStore:
    return OtpStore(aio_redis, Sealer(SECRET), grace=60)


async def deliverer_for(
    steps: list[dict[str, object]], providers: list[ProviderSettings], store: OtpStore, redis: aioredis.Redis
) -> tuple[Deliverer, aiohttp.ClientSession]:
    settings = Settings(
        redis_url="redis://unused", secret_key=SECRET, providers=providers, workflows={"w": {"steps": steps}}
    )
    session = aiohttp.ClientSession()
    return Deliverer(settings, store, CircuitBreakers(redis), build_providers(settings, session)), session


async def workflow_otp(store: OtpStore, channel: str = "SMS", steps: int = 2) -> str:
    otp_id = str(uuid.uuid4())
    spec = SPEC.model_copy(update={"recipient": RECIPIENT, "channel": channel})
    await store.create(
        NewOtp(otp_id, spec, "index", "+33612", time.time(), workflow="w", channels=(channel,) + ("SMS",) * (steps - 1))
    )
    return otp_id


async def test_a_step_whose_vendor_cannot_honour_its_channel_gives_way_to_the_next_step_at_once(
    servers: list[ProviderSettings], store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    # Given a WhatsApp OTP whose workflow's first step names Octopush (SMS only), then SMS through a console
    steps: list[dict[str, object]] = [
        {"vendor": "wf-octopush", "deadline": 3},
        {"channel": "SMS", "vendor": "wf-console"},
    ]
    deliverer, session = await deliverer_for(steps, servers, store, aio_redis)
    otp_id = await workflow_otp(store, channel="WhatsApp")

    # When its first send runs, then the job it returns
    first = await deliverer.deliver(SendJob(otp_id, FIRST_JOB))
    assert isinstance(first, RetryLater)
    second = await deliverer.deliver(first.job)
    await session.close()

    # Then Octopush was passed over (never given a WhatsApp OTP), step 1 went out at once, by SMS, and no
    # deadline runs after the last step
    assert first.countdown == 0
    assert isinstance(second, Finished)
    assert second.deadline is None
    report = await store.report(otp_id, time.time())
    logged = [(a.vendor, a.outcome, a.error_code, a.step, a.channel) for a in report.attempts]
    assert logged == [
        ("wf-octopush", AttemptOutcome.VENDOR_UNAVAILABLE, "CANNOT_HONOUR", 0, "WhatsApp"),
        ("wf-console", AttemptOutcome.DELIVERED, None, 1, "SMS"),
    ]
    assert report.workflow is not None
    assert [(s.step, s.outcome) for s in report.workflow.steps] == [(0, "FAILED"), (1, "AWAITING_RECEIPT")]


async def test_a_step_that_names_no_vendor_leaves_out_the_vendor_that_took_an_unconfirmed_earlier_step(
    servers: list[ProviderSettings], store: OtpStore, aio_redis: aioredis.Redis
) -> None:
    # Given a workflow of two steps on the country route (the chain: console, spare console, Octopush)
    steps: list[dict[str, object]] = [{"deadline": 3}, {"channel": "SMS"}]
    deliverer, session = await deliverer_for(steps, servers, store, aio_redis)
    otp_id = await workflow_otp(store)
    first = await deliverer.deliver(SendJob(otp_id, FIRST_JOB))
    assert isinstance(first, Finished)
    assert first.deadline is not None

    # When its deadline passes with no receipt and the next step's send runs
    advanced = await store.end_step(otp_id, StepEnd.DEADLINE, 1, first.deadline_at + 0.1, send_seq=1)
    assert advanced.kind is StepKind.ADVANCED
    second = await deliverer.deliver(SendJob(otp_id, advanced.job_seq))
    await session.close()

    # Then the first step waited 3 s from its acceptance, and the second went to the next vendor of the route
    assert first.deadline_at == pytest.approx(time.time() + 3, abs=1.0)
    assert isinstance(second, Finished)
    report = await store.report(otp_id, time.time())
    assert [(a.vendor, a.step) for a in report.attempts] == [("wf-console", 0), ("wf-spare", 1)]
