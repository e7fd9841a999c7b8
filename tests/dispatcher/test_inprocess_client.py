"""The in-process client: the same four operations as the HTTP API; on the running stack where a code must
be delivered, else on the in-process API's settings (no worker)."""

import pytest

from config import Settings
from dispatcher import InProcessClient, InvalidRequest, SyncInProcessClient, VendorCheckUnavailable, VerifyStatus
from tests.support import Api, Stack, random_number


async def test_a_code_sent_through_the_client_is_delivered_and_verified_with_the_vendor(api: Api, stack: Stack) -> None:
    recipient = random_number()
    async with InProcessClient(stack.settings) as client:
        sent = await client.send(recipient, "Your code is {}", expiry="120")
        await api.delivered(sent.otp_id)
        code = (await api.inbox(recipient))["code"]

        assert await client.verify(sent.otp_id, code) == VerifyStatus.APPROVED
        assert (await client.report(sent.otp_id)).delivered_by == "d7"
        assert sent.expiry == 120


async def test_bad_input_raises_invalid_request_with_d7_items(local_settings: Settings) -> None:
    async with InProcessClient(local_settings) as client:
        with pytest.raises(InvalidRequest) as invalid:
            await client.send("0612345678", "Your code is {}")

    assert invalid.value.errors[0].loc == ["recipient"]


async def test_a_vendor_code_cannot_be_verified_by_a_client_without_that_vendors_settings(
    api: Api, stack: Stack
) -> None:
    recipient = random_number()
    without_vendors = Settings(redis_url=stack.redis_url, secret_key=stack.settings.secret_key)
    async with InProcessClient(stack.settings) as client, InProcessClient(without_vendors) as other:
        sent = await client.send(recipient, "Your code is {}")
        await api.delivered(sent.otp_id)

        with pytest.raises(VendorCheckUnavailable):
            await other.verify(sent.otp_id, (await api.inbox(recipient))["code"])
        # the failed check was not counted: the right code still verifies
        assert await client.verify(sent.otp_id, (await api.inbox(recipient))["code"]) == VerifyStatus.APPROVED


@pytest.mark.usefixtures("broker")
def test_the_sync_client_sends_resends_and_reports(local_settings: Settings) -> None:
    with SyncInProcessClient(local_settings) as client:
        sent = client.send(random_number(), "Your code is {}", retry_delay=0)
        resent = client.resend(sent.otp_id)
        report = client.report(sent.otp_id)

    assert (resent.otp_id, resent.resend_count) == (sent.otp_id, 1)
    assert report.resend_count == 1
