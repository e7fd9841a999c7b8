"""Resend rules (D7's retry_delay and retry_count) through the API, and what a resend delivers."""

from tests.support import Api, random_number


async def resend(api: Api, otp_id: str) -> tuple[int, dict[str, object]]:
    status, body = await api.post("/verify/v1/otp/resend-otp", {"otp_id": otp_id})
    return status, body


async def test_a_resend_of_a_send_a_receipt_confirmed_is_delivered_again_by_the_same_vendor(api: Api) -> None:
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, retry_delay=0)
    assert (await api.receipted(otp_id))["attempts"][-1]["receipt"] == "DELIVERED"

    status, body = await resend(api, otp_id)

    assert status == 200
    assert (body["otp_id"], body["status"], body["resend_count"]) == (otp_id, "OPEN", 1)
    report = await api.delivered(otp_id, count=2)
    assert [(a["send_number"], a["vendor"]) for a in report["attempts"]] == [(1, "d7"), (2, "d7")]
    assert await api.verify(otp_id, (await api.inbox(recipient))["code"]) == "APPROVED"


async def test_a_resend_of_a_send_d7_dropped_silently_goes_to_the_next_vendor_and_its_code_verifies(api: Api) -> None:
    # Given D7 takes the first send and drops it without a receipt
    recipient = random_number()
    await api.fault("d7", silent_drop_rate=1.0, prefix=recipient)
    otp_id = await api.send(recipient=recipient, retry_delay=0)
    await api.delivered(otp_id)

    # When the user asks for the code again
    status, _ = await resend(api, otp_id)

    # Then Octopush sends it, D7 is not asked first, and the code the phone got verifies
    assert status == 200
    report = await api.delivered(otp_id, count=2)
    assert [(a["send_number"], a["vendor"]) for a in report["attempts"]] == [(1, "d7"), (2, "octopush")]
    assert report["attempts"][1]["routing"]["reason"] == "ordered #1: the chain's order"
    assert await api.verify(otp_id, (await api.inbox(recipient))["code"]) == "APPROVED"


async def test_a_resend_sooner_than_retry_delay_gets_d7s_400(api: Api) -> None:
    otp_id = await api.send(retry_delay="60")

    status, body = await resend(api, otp_id)

    assert status == 400
    assert body["detail"]["code"] == "RESEND_TOO_SOON"  # type: ignore[index]


async def test_more_resends_than_retry_count_get_d7s_400(api: Api) -> None:
    otp_id = await api.send(retry_delay=0, retry_count=1)
    assert (await resend(api, otp_id))[0] == 200

    status, body = await resend(api, otp_id)

    assert status == 400
    assert body["detail"]["code"] == "RESEND_LIMIT_REACHED"  # type: ignore[index]


async def test_resending_an_unknown_otp_is_d7s_404(api: Api) -> None:
    status, body = await resend(api, "3f0e1d2c-0000-4000-8000-000000000000")

    assert status == 404
    assert body["detail"]["code"] == "MESSAGE_LOG_NOT_EXISTS"  # type: ignore[index]


async def test_a_locally_checked_resend_replaces_the_code(api: Api) -> None:
    await api.only_console()
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, retry_delay=0)
    await api.delivered(otp_id)

    await resend(api, otp_id)
    await api.delivered(otp_id, count=2)
    second = (await api.inbox(recipient))["code"]

    assert await api.verify(otp_id, second) == "APPROVED"
