"""The ``Deliverer`` on routes with a policy, in-process: a real ``OtpStore`` on the session's Redis and canned vendors
over loopback HTTP. A send decides its route once (its retries walk it again) and each attempt says why its vendor
was tried; the operators' overrides in Redis are honoured within the scoreboard's refresh."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from config import ProviderSettings, Settings
from config.routing import RoutingSettings
from devtools.processes import free_port
from dispatcher.constants import ROUTING_OVERRIDES_KEY, breaker_key
from dispatcher.schemas import AttemptOutcome, SendJob
from dispatcher.sealing import Sealer
from dispatcher.store import FIRST_JOB, Action, NewOtp, OtpStore, Override, connect
from tests.support import own_database
from tests.vendors.canned import Answer, Canned
from tests.vendors.specs import SPEC
from vendors import build_providers
from vendors.receipts import Receipt, ReceiptOutcome
from workers.breaker import CircuitBreakers
from workers.delivery import Deliverer, Finished, RetryLater
from workers.metrics import REGISTRY
from workers.routing import Board
from workers.scoreboard import Scoreboard

SECRET = "routed-delivery-secret"
RECIPIENT = "+33612345678"
INBOX = f"/inbox/{RECIPIENT}"
NAMES = ("routed-a", "routed-b")
REFRESH = 0.05
URLS: dict[str, str] = {}


@pytest.fixture
async def vendors() -> AsyncIterator[dict[str, Canned]]:
    """Two console vendors answering 200, by name (their servers' addresses in ``URLS``)."""
    canned = {name: Canned(default=Answer(status=200, body={})) for name in NAMES}
    servers = [TestServer(canned[name].app(), host="127.0.0.1") for name in NAMES]
    for name, server in zip(NAMES, servers, strict=True):
        await server.start_server()
        URLS[name] = str(server.make_url(""))
    yield canned
    for server in servers:
        await server.close()


@pytest.fixture
async def aio_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(own_database(redis_url), 1.0)
    await client.delete(ROUTING_OVERRIDES_KEY, *(breaker_key(name) for name in NAMES))
    yield client
    await client.delete(ROUTING_OVERRIDES_KEY)
    await client.aclose()


@pytest.fixture
async def deliverer(vendors: dict[str, Canned], aio_redis: aioredis.Redis) -> AsyncIterator[tuple[Deliverer, OtpStore]]:
    providers = [
        ProviderSettings.model_validate(
            {"name": name, "kind": "console", "base_url": URLS[name], "attempts": 2, "retry_delay": 0.01}
        )
        for name in NAMES
    ]
    settings = Settings(
        redis_url="redis://unused",
        secret_key=SECRET,
        providers=providers,
        route_policies={"+33": {"policy": "adaptive"}},
        routing={"refresh": REFRESH},
    )
    store = OtpStore(aio_redis, Sealer(SECRET), grace=60)
    async with aiohttp.ClientSession() as session:
        yield Deliverer(settings, store, CircuitBreakers(aio_redis), build_providers(settings, session)), store


async def new_otp(store: OtpStore, resend_delay: int = 60) -> str:
    otp_id = str(uuid.uuid4())
    spec = SPEC.model_copy(update={"recipient": RECIPIENT, "resend_delay": resend_delay})
    await store.create(NewOtp(otp_id, spec, "index", "+33612", time.time(), country="+33"))
    return otp_id


async def test_a_retried_send_walks_the_route_its_first_run_decided_whatever_changed_since(
    deliverer: tuple[Deliverer, OtpStore], vendors: dict[str, Canned]
) -> None:
    # Given both vendors fail once (503), and an adaptive send's first run asked for a retry at its lead vendor
    chain, store = deliverer
    for name in NAMES:
        vendors[name].answers[INBOX] = Answer(status=503)
    otp_id = await new_otp(store)
    retry = await chain.deliver(SendJob(otp_id, FIRST_JOB))
    assert isinstance(retry, RetryLater)
    lead = (await store.report(otp_id, time.time())).attempts[0]

    # When the other vendor is pinned, both answer 200 again, and the retry runs once the scoreboard has read the pin
    other = next(name for name in NAMES if name != lead.vendor)
    await store.set_override(Override("+33", "*", other, Action.PIN))
    for name in NAMES:
        vendors[name].answers[INBOX] = Answer(status=200, body={})
    await asyncio.sleep(REFRESH * 2)  # the behaviour under test: a change is read after the refresh
    outcome = await chain.deliver(retry.job)

    # Then the retry went to the same lead vendor, and both attempts say why it was tried first
    assert isinstance(outcome, Finished)
    attempts = (await store.report(otp_id, time.time())).attempts
    assert [(a.vendor, a.outcome) for a in attempts] == [
        (lead.vendor, AttemptOutcome.TEMPORARY_ERROR),
        (lead.vendor, AttemptOutcome.DELIVERED),
    ]
    assert attempts[0].routing == attempts[1].routing
    assert attempts[1].routing is not None
    assert (attempts[1].routing.policy, attempts[1].routing.rank, attempts[1].routing.pinned) == ("adaptive", 1, False)
    assert attempts[1].routing.score is not None


async def test_a_ban_is_honoured_by_the_next_send_after_the_refresh_and_named_in_its_reason(
    deliverer: tuple[Deliverer, OtpStore], vendors: dict[str, Canned]
) -> None:
    # Given a worker that has routed a send already (its scoreboard read)
    chain, store = deliverer
    await chain.deliver(SendJob(await new_otp(store), FIRST_JOB))

    # When routed-a is banned for +33, and sends follow after the refresh
    await store.set_override(Override("+33", "*", "routed-a", Action.BAN))
    await asyncio.sleep(REFRESH * 2)  # the behaviour under test: a change is read after the refresh
    otp_ids = [await new_otp(store) for _ in range(10)]
    for otp_id in otp_ids:
        await chain.deliver(SendJob(otp_id, FIRST_JOB))

    # Then every one went to routed-b, each attempt naming the ban
    for otp_id in otp_ids:
        [attempt] = (await store.report(otp_id, time.time())).attempts
        assert attempt.vendor == "routed-b"
        assert attempt.routing is not None
        assert attempt.routing.banned == ["routed-a"]
        assert attempt.routing.reason.endswith("; banned: routed-a")


async def test_a_scoreboard_that_cannot_read_redis_keeps_its_last_view_and_routing_goes_on() -> None:
    # Given a worker's scoreboard whose Redis does not answer (a closed port)
    store = OtpStore(connect(f"redis://127.0.0.1:{free_port()}/0", 0.2), Sealer(SECRET), grace=60)
    scoreboard = Scoreboard(store, RoutingSettings(refresh=REFRESH), adaptive=True)

    # When it is asked for the board, twice within the refresh
    first = await scoreboard.board()
    again = await scoreboard.board()
    await store.close()

    # Then it answers its last view (none yet: no evidence, no override) rather than fail the send
    assert first == again == Board()


def decisions(vendor: str, why: str) -> float:
    labels = {"policy": "adaptive", "country": "+33", "channel": "SMS", "vendor": vendor, "why": why}
    return REGISTRY.get_sample_value("otp_routing_decisions_total", labels) or 0.0


async def test_each_send_routed_is_counted_by_the_vendor_that_leads_it_and_why(
    deliverer: tuple[Deliverer, OtpStore],
) -> None:
    # Given routed-b pinned for +33 before the worker routes anything (its scoreboard's first read sees the pin)
    chain, store = deliverer
    await store.set_override(Override("+33", "*", "routed-b", Action.PIN))
    before = {vendor: decisions(vendor, "pinned") for vendor in NAMES}

    # When five sends are routed
    for _ in range(5):
        await chain.deliver(SendJob(await new_otp(store), FIRST_JOB))

    # Then five decisions are counted for routed-b, led because it is pinned, and none for routed-a
    assert {vendor: decisions(vendor, "pinned") - before[vendor] for vendor in NAMES} == {"routed-a": 0, "routed-b": 5}


# a resend: the previous vendor leads it only when a receipt confirmed its send ---------------------------------------

RECEIPT_VENDORS = ("receipts-a", "receipts-b")
TICKET = "sms_0123456789abc"
ACCEPTED = Answer(status=200, body={"code": 0, "otp_request_token": "token", "ticket_number": TICKET})
Receipted = tuple[Deliverer, OtpStore, dict[str, Canned]]


@pytest.fixture
async def receipted(aio_redis: aioredis.Redis) -> AsyncIterator[Receipted]:
    """A chain of two Octopush vendors whose receipts reach us (the dispatcher has a callback address), each
    accepting every message with the ticket its receipts name; with their canned servers by name."""
    canned = {name: Canned(default=ACCEPTED) for name in RECEIPT_VENDORS}
    servers = {name: TestServer(canned[name].app(), host="127.0.0.1") for name in RECEIPT_VENDORS}
    for server in servers.values():
        await server.start_server()
    await aio_redis.delete(*(breaker_key(name) for name in RECEIPT_VENDORS))
    providers = [
        ProviderSettings.model_validate(
            {"name": name, "kind": "octopush", "base_url": str(server.make_url("")), "login": "me", "password": "k"}
        )
        for name, server in servers.items()
    ]
    settings = Settings(
        redis_url="redis://unused", secret_key=SECRET, providers=providers, callback_url="https://otp.example"
    )
    store = OtpStore(aio_redis, Sealer(SECRET), grace=60)
    async with aiohttp.ClientSession() as session:
        yield Deliverer(settings, store, CircuitBreakers(aio_redis), build_providers(settings, session)), store, canned
    for server in servers.values():
        await server.close()


async def first_send_then_resend(store: OtpStore, chain: Deliverer, receipt: ReceiptOutcome | None) -> tuple[str, int]:
    """An OTP the chain's first vendor took, with that vendor's receipt for it (or none), then resent: its otp_id
    and the resend's job number."""
    otp_id = await new_otp(store, resend_delay=0)
    assert isinstance(await chain.deliver(SendJob(otp_id, FIRST_JOB)), Finished)
    if receipt is not None:
        await store.record_receipt("receipts-a", Receipt(TICKET, receipt, receipt.value.lower()), time.time())
    return otp_id, (await store.resend(otp_id, time.time())).job_seq


@pytest.mark.parametrize(
    ("receipt", "resent_by", "why"),
    [
        (ReceiptOutcome.DELIVERED, "receipts-a", "ordered #1: took the previous send"),
        (ReceiptOutcome.UNDELIVERED, "receipts-b", "ordered #1: the chain's order"),
        (None, "receipts-b", "ordered #1: the chain's order"),
    ],
    ids=["delivered", "undelivered", "no-receipt"],
)
async def test_a_resend_leads_with_the_previous_vendor_only_if_a_receipt_confirmed_its_send(
    receipted: Receipted, receipt: ReceiptOutcome | None, resent_by: str, why: str
) -> None:
    # Given an OTP the chain's first vendor took, and that vendor's receipt for it (or none)
    chain, store, _ = receipted
    otp_id, job_seq = await first_send_then_resend(store, chain, receipt)

    # When its resend runs
    outcome = await chain.deliver(SendJob(otp_id, job_seq))

    # Then the previous vendor led it only if a delivered receipt confirmed its send; else the next vendor did
    assert isinstance(outcome, Finished)
    attempts = (await store.report(otp_id, time.time())).attempts
    assert [(a.send_number, a.vendor) for a in attempts] == [(1, "receipts-a"), (2, resent_by)]
    assert attempts[1].routing is not None
    assert attempts[1].routing.reason == why


async def test_a_resend_walks_the_route_it_decided_though_a_receipt_comes_between_its_runs(
    receipted: Receipted,
) -> None:
    # Given a resend of an OTP whose first send got no receipt, whose first run asked for a retry at the next vendor
    chain, store, canned = receipted
    otp_id, job_seq = await first_send_then_resend(store, chain, None)
    canned["receipts-b"].default = Answer(status=503)
    retry = await chain.deliver(SendJob(otp_id, job_seq))
    assert isinstance(retry, RetryLater)

    # When the first send's delivered receipt comes, and the retry runs
    await store.record_receipt("receipts-a", Receipt(TICKET, ReceiptOutcome.DELIVERED, "delivered"), time.time())
    canned["receipts-b"].default = ACCEPTED
    outcome = await chain.deliver(retry.job)

    # Then the retry went to the same vendor: the order the resend decided stands
    assert isinstance(outcome, Finished)
    attempts = (await store.report(otp_id, time.time())).attempts
    assert [(a.send_number, a.vendor, a.outcome) for a in attempts] == [
        (1, "receipts-a", AttemptOutcome.DELIVERED),
        (2, "receipts-b", AttemptOutcome.TEMPORARY_ERROR),
        (2, "receipts-b", AttemptOutcome.DELIVERED),
    ]
