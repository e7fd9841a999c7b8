"""Delivery receipts through the whole stack: the sandbox's vendors send them as they document them, to the
API's callback routes, and each lands on the attempt it is about."""

from tests.support import Api, Stack, random_number


async def test_a_d7_delivery_receipt_marks_its_attempt_delivered_with_its_latency(api: Api) -> None:
    otp_id = await api.send(recipient=random_number())

    report = await api.receipted(otp_id)

    [attempt] = report["attempts"]
    assert (attempt["vendor"], attempt["receipt"]) == ("d7", "DELIVERED")
    assert attempt["receipt_latency_ms"] >= 0
    assert attempt["receipt_at"] is not None


async def test_a_d7_message_the_carrier_did_not_deliver_is_marked_undelivered_with_its_reason(api: Api) -> None:
    await api.fault("d7", undelivered_rate=1.0)

    report = await api.receipted(await api.send(recipient=random_number()))

    [attempt] = report["attempts"]
    assert attempt["receipt"] == "UNDELIVERED"
    assert attempt["receipt_reason"]


async def test_an_octopush_receipt_reaches_the_account_callback_and_its_attempt(api: Api, stack: Stack) -> None:
    stack.point_octopush_receipts()
    await api.fault("d7", no_credit=True)

    report = await api.receipted(await api.send(recipient=random_number()))

    assert report["delivered_by"] == "octopush"
    assert report["attempts"][-1]["receipt"] == "DELIVERED"


async def test_a_forged_receipt_changes_nothing(api: Api, stack: Stack) -> None:
    otp_id = await api.send(recipient=random_number())
    await api.receipted(otp_id)
    forged = f"{stack.api_url}/callbacks/d7/{'0' * 32}"

    async with api.session.post(forged, data={"request_id": "x", "status": "undelivered"}) as response:
        status = response.status

    assert status == 404
    assert (await api.report(otp_id))["attempts"][0]["receipt"] == "DELIVERED"
