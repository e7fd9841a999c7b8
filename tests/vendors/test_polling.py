"""The D7 adapter's poll of D7's delivery status, against the sandbox D7 over real HTTP: what it says of a message
delivered, undelivered, silently dropped or unknown, with its postback lost, and when the endpoint fails."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import ProviderSettings
from devtools.devstack import sandbox_providers
from devtools.processes import free_port
from sandbox import create_sandbox_app
from tests.support import wait_for
from tests.vendors.specs import SPEC
from vendors import D7Provider, OutcomeUnknown, TemporaryError
from vendors.receipts import Receipt, ReceiptOutcome

WITHIN = 0.5
"""Seconds a poll may take in these tests (the sandbox answers in milliseconds)."""


class SandboxD7:
    """The D7 adapter and the sandbox it talks to."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        settings = ProviderSettings.model_validate(sandbox_providers(url)[0])
        unreachable = f"http://127.0.0.1:{free_port()}/callbacks/d7/secret"  # nothing listens: postbacks are lost
        self.d7 = D7Provider(settings, session, callback_url=unreachable)

    async def fault(self, **faults: object) -> None:
        async with self.session.put(f"{self.url}/_sandbox/faults/d7", json=faults) as answer:
            assert answer.status == 200, await answer.text()

    async def settled(self, otp_id: str) -> Receipt:
        """The poll's answer once it has evidence (the message's outcome is known at D7)."""

        async def known() -> Receipt | None:
            receipt = await self.d7.poll(otp_id, WITHIN)
            return receipt if receipt is not None and receipt.outcome is not ReceiptOutcome.NONE else None

        result: Receipt = await wait_for(known, within=5.0)
        return result


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxD7]:
    server = TestServer(create_sandbox_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield SandboxD7(str(server.make_url("")).rstrip("/"), session)
    await server.close()


async def test_a_delivered_message_whose_postback_was_lost_polls_as_delivered(sandbox: SandboxD7) -> None:
    # Given a message D7 delivered, whose postback could not reach the dispatcher
    otp_id = await sandbox.d7.send(SPEC, otp_id="ours", expiry=600)

    # When the adapter polls D7's delivery status
    receipt = await sandbox.settled(otp_id)

    # Then it is a delivered receipt for that otp_id, in D7's word
    assert receipt == Receipt(otp_id, ReceiptOutcome.DELIVERED, "delivered")


async def test_an_undelivered_message_polls_as_undelivered_with_d7s_status_as_the_reason(sandbox: SandboxD7) -> None:
    await sandbox.fault(undelivered_rate=1.0)
    otp_id = await sandbox.d7.send(SPEC, otp_id="ours", expiry=600)

    receipt = await sandbox.settled(otp_id)

    assert receipt == Receipt(otp_id, ReceiptOutcome.UNDELIVERED, "un_delivered", "un_delivered")


async def test_a_silently_dropped_message_stays_sent_which_is_no_evidence(sandbox: SandboxD7) -> None:
    # Given D7 accepted a message the network dropped without a word
    await sandbox.fault(silent_drop_rate=1.0, receipt_delay_ms=0)
    otp_id = await sandbox.d7.send(SPEC, otp_id="ours", expiry=600)

    # When polled (after the delivery report would have come)
    receipt = await sandbox.d7.poll(otp_id, WITHIN)

    # Then D7 says it is still with the operator: no evidence either way
    assert receipt == Receipt(otp_id, ReceiptOutcome.NONE, "sent")


async def test_the_poll_reads_the_latest_message_after_a_resend(sandbox: SandboxD7) -> None:
    # Given a first message D7 reported undelivered, then a resend D7 delivered
    await sandbox.fault(undelivered_rate=1.0, receipt_delay_ms=0)
    otp_id = await sandbox.d7.send(SPEC.model_copy(update={"resend_delay": 0}), otp_id="ours", expiry=600)
    assert (await sandbox.settled(otp_id)).outcome is ReceiptOutcome.UNDELIVERED
    await sandbox.fault(receipt_delay_ms=0)
    assert await sandbox.d7.resend(otp_id, SPEC, otp_id="ours", expiry=600) == otp_id

    # When polled, then the answer is about the resend
    assert (await sandbox.settled(otp_id)).outcome is ReceiptOutcome.DELIVERED


async def test_an_otp_id_d7_does_not_know_polls_as_nothing(sandbox: SandboxD7) -> None:
    assert await sandbox.d7.poll("8d963dbf-d655-4fe6-9157-48885a036050", WITHIN) is None


async def test_a_failing_status_endpoint_is_a_temporary_error(sandbox: SandboxD7) -> None:
    otp_id = await sandbox.d7.send(SPEC, otp_id="ours", expiry=600)
    await sandbox.fault(status=503)

    with pytest.raises(TemporaryError):
        await sandbox.d7.poll(otp_id, WITHIN)


async def test_a_status_endpoint_that_hangs_gives_up_within_the_polls_time(sandbox: SandboxD7) -> None:
    otp_id = await sandbox.d7.send(SPEC, otp_id="ours", expiry=600)
    await sandbox.fault(latency_ms=5_000)

    with pytest.raises(OutcomeUnknown):
        await sandbox.d7.poll(otp_id, 0.2)
