"""A workflow step's deadline with its poll, in-process: a real ``OtpStore`` on the session's Redis and the sandbox
D7 over loopback HTTP. When the worker polls, what it records, and that a callback and a poll count once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import ProviderSettings
from devtools.devstack import sandbox_providers
from dispatcher.schemas import DeadlineJob, ReceiptStatus, StepEnd
from dispatcher.sealing import Sealer
from dispatcher.store import NewOtp, OtpStore, ReceiptKind, StepKind, connect
from sandbox import create_sandbox_app
from tests.dispatcher.store.otps import attempt
from tests.support import own_database, wait_for
from tests.vendors.specs import SPEC
from vendors import D7Provider
from vendors.receipts import Receipt, ReceiptOutcome
from workers.polling import Deadlines

LAST_STEP = 1


class Sandbox:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        # D7's postbacks go to a path of the sandbox that takes none: they are sent (so D7 knows each outcome) and lost
        lost = f"{url}/callbacks-lost"
        self.d7 = D7Provider(ProviderSettings.model_validate(sandbox_providers(url)[0]), session, callback_url=lost)

    async def fault(self, **faults: object) -> None:
        async with self.session.put(f"{self.url}/_sandbox/faults/d7", json=faults) as answer:
            assert answer.status == 200, await answer.text()

    async def polls(self) -> int:
        async with self.session.get(f"{self.url}/_sandbox/calls") as answer:
            return int((await answer.json()).get("d7", {}).get("message-log", 0))

    async def outcome_known(self) -> bool | None:
        """True once D7 knows the outcome of the message it accepted (its postback went out)."""
        async with self.session.get(f"{self.url}/_sandbox/receipts") as answer:
            return True if (await answer.json())["receipts"] else None


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    server = TestServer(create_sandbox_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Sandbox(str(server.make_url("")).rstrip("/"), session)
    await server.close()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[OtpStore]:
    store = OtpStore(connect(own_database(redis_url), 1.0), Sealer("polling-secret"), grace=60)
    yield store
    await store.close()


async def accepted_by_d7(store: OtpStore, sandbox: Sandbox, deadline_in: float) -> tuple[str, str]:
    """An OTP of a two-step workflow whose first send D7 accepted, its deadline ``deadline_in`` seconds away
    (negative: passed); its otp_id and D7's reference."""
    otp_id = str(uuid.uuid4())
    await store.create(NewOtp(otp_id, SPEC, "index", "+33612", time.time(), workflow="w", channels=("SMS", "SMS")))
    reference = await sandbox.d7.send(SPEC, otp_id=otp_id, expiry=600)
    await store.mark_delivered(
        otp_id, 1, reference, attempt("d7"), receipt_reference=reference, deadline_at=time.time() + deadline_in
    )
    assert await wait_for(sandbox.outcome_known, within=5.0)
    return otp_id, reference


async def test_a_poll_that_finds_the_message_delivered_stops_the_workflow_and_a_later_callback_counts_nothing(
    store: OtpStore, sandbox: Sandbox
) -> None:
    # Given D7 delivered the first step's message, no receipt reached us, and the step's deadline has passed
    otp_id, reference = await accepted_by_d7(store, sandbox, deadline_in=-0.1)

    # When the deadline job runs, then D7's callback comes late
    reason, answer = await Deadlines(store, {"d7": sandbox.d7}).end_step(DeadlineJob(otp_id, 0, 1), LAST_STEP)
    late = await store.record_receipt("d7", Receipt(reference, ReceiptOutcome.DELIVERED, "delivered"), time.time())

    # Then D7 was polled once, the attempt's receipt is the poll's, the workflow stopped, and the callback changed
    # nothing
    assert (reason, answer.kind) == (StepEnd.DELIVERED, StepKind.STOPPED)
    assert await sandbox.polls() == 1
    assert late.kind is ReceiptKind.DUPLICATE
    shown = (await store.report(otp_id, time.time())).attempts[0]
    assert (shown.receipt, shown.receipt_status) == (ReceiptStatus.DELIVERED, "delivered")


async def test_a_step_a_callback_confirmed_is_not_polled(store: OtpStore, sandbox: Sandbox) -> None:
    # Given D7's delivered receipt came (and stopped the workflow) before the deadline passed
    otp_id, reference = await accepted_by_d7(store, sandbox, deadline_in=-0.1)
    received = await store.record_receipt("d7", Receipt(reference, ReceiptOutcome.DELIVERED, "delivered"), time.time())
    await store.end_step(otp_id, StepEnd.DELIVERED, LAST_STEP, time.time(), attempt=received.attempt)

    # When the deadline job runs
    reason, answer = await Deadlines(store, {"d7": sandbox.d7}).end_step(DeadlineJob(otp_id, 0, 1), LAST_STEP)

    # Then nothing was polled and nothing goes out
    assert (reason, answer.kind) == (StepEnd.DEADLINE, StepKind.STOPPED)
    assert await sandbox.polls() == 0


async def test_a_deadline_job_that_runs_early_polls_nothing_and_waits(store: OtpStore, sandbox: Sandbox) -> None:
    otp_id, _ = await accepted_by_d7(store, sandbox, deadline_in=60)

    reason, answer = await Deadlines(store, {"d7": sandbox.d7}).end_step(DeadlineJob(otp_id, 0, 1), LAST_STEP)

    assert (reason, answer.kind) == (StepEnd.DEADLINE, StepKind.WAIT)
    assert await sandbox.polls() == 0


async def test_a_status_endpoint_that_fails_leaves_the_deadline_to_send_the_next_step(
    store: OtpStore, sandbox: Sandbox
) -> None:
    # Given the step's deadline has passed and D7's status endpoint answers 503
    otp_id, _ = await accepted_by_d7(store, sandbox, deadline_in=-0.1)
    await sandbox.fault(status=503)

    # When the deadline job runs
    reason, answer = await Deadlines(store, {"d7": sandbox.d7}).end_step(DeadlineJob(otp_id, 0, 1), LAST_STEP)

    # Then the deadline acted alone: the next step goes out, the attempt still has no receipt
    assert (reason, answer.kind) == (StepEnd.DEADLINE, StepKind.ADVANCED)
    assert await sandbox.polls() == 1
    assert (await store.report(otp_id, time.time())).attempts[0].receipt_at is None
