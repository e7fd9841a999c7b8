"""The service's rules through the in-process API: resends (their quota, their wait, a locked OTP) and sends no
configured vendor could honour. No worker runs: an OTP stays where the API left it."""

from typing import Any

from tests.dispatcher.conftest import LocalApi, LocalApiFactory
from tests.support import random_number

SEND = "/verify/v1/otp/send-otp"
RESEND = "/verify/v1/otp/resend-otp"
VERIFY = "/verify/v1/otp/verify-otp"
MESSAGE_CENTRAL = {
    "name": "messagecentral",
    "kind": "messagecentral",
    "base_url": "http://127.0.0.1:1",
    "login": "C-1",
    "password": "secret",
    "vendor_text": True,
}


async def resend(api: LocalApi, otp_id: str) -> tuple[int, Any, str | None]:
    async with api.session.post(api.url + RESEND, json={"otp_id": otp_id}, headers=api.headers) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_resends_refused_as_too_soon_use_none_of_the_numbers_quota(start_local_api: LocalApiFactory) -> None:
    api = await start_local_api(limits={"recipient_sends": 2, "recipient_window": 600})
    number = random_number()
    _, sent = await api.post(SEND, {"recipient": number, "content": "Code {}", "retry_delay": 60})

    refusals = [await resend(api, sent["otp_id"]) for _ in range(4)]
    status, _ = await api.post(SEND, {"recipient": number, "content": "Code {}"})

    assert {(status, body["detail"]["code"]) for status, body, _ in refusals} == {(400, "RESEND_TOO_SOON")}
    assert status == 200  # the second of the number's two sends


async def test_an_accepted_resend_uses_the_numbers_quota(start_local_api: LocalApiFactory) -> None:
    api = await start_local_api(limits={"recipient_sends": 2, "recipient_window": 600})
    number = random_number()
    _, sent = await api.post(SEND, {"recipient": number, "content": "Code {}", "retry_delay": 0})
    assert (await resend(api, sent["otp_id"]))[0] == 200

    status, body = await api.post(SEND, {"recipient": number, "content": "Code {}"})

    assert (status, body["detail"]["code"]) == (429, "RECIPIENT_LIMIT_REACHED")


async def test_a_resend_too_soon_says_in_how_many_seconds_one_is_allowed(local_api: LocalApi) -> None:
    _, sent = await local_api.post(SEND, {"recipient": random_number(), "content": "Code {}", "retry_delay": 60})

    status, body, retry_after = await resend(local_api, sent["otp_id"])

    assert (status, body["detail"]["code"]) == (400, "RESEND_TOO_SOON")
    assert retry_after is not None
    assert 55 <= int(retry_after) <= 60
    assert f"allowed in {retry_after} s" in body["detail"]["message"]


async def test_an_otp_whose_wrong_codes_used_its_budget_is_failed_for_good(local_api: LocalApi) -> None:
    _, sent = await local_api.post(SEND, {"recipient": random_number(), "content": "Code {}", "retry_delay": 0})
    otp_id = sent["otp_id"]

    verdicts = [(await local_api.post(VERIFY, {"otp_id": otp_id, "otp_code": "000000"}))[1] for _ in range(5)]
    _, report = await local_api.get(f"/verify/v1/report/{otp_id}")

    assert {verdict["status"] for verdict in verdicts} == {"FAILED"}
    assert (report["status"], report["failure_reason"]) == ("FAILED", "too many wrong codes")


async def test_an_otp_locked_by_wrong_codes_cannot_be_resent(local_api: LocalApi) -> None:
    _, sent = await local_api.post(SEND, {"recipient": random_number(), "content": "Code {}", "retry_delay": 0})
    for _ in range(5):
        await local_api.post(VERIFY, {"otp_id": sent["otp_id"], "otp_code": "000000"})
    queued = local_api.queued()

    status, body, _ = await resend(local_api, sent["otp_id"])

    assert (status, body["detail"]["code"]) == (400, "OTP_LOCKED")
    assert local_api.queued() == queued


async def test_a_send_no_configured_vendor_could_honour_is_422_naming_why(start_local_api: LocalApiFactory) -> None:
    api = await start_local_api(providers=[MESSAGE_CENTRAL])
    body = {"recipient": random_number(), "content": "Code {}", "otp_type": "alphanumeric", "otp_code_length": 4}

    status, answer = await api.post(SEND, body)

    assert status == 422
    assert answer["detail"][0]["msg"].endswith("messagecentral: no alphanumeric codes")
    assert api.queued() == 0


async def test_a_send_one_configured_vendor_can_honour_is_accepted(start_local_api: LocalApiFactory) -> None:
    api = await start_local_api(providers=[MESSAGE_CENTRAL])

    status, _ = await api.post(SEND, {"recipient": random_number(), "content": "Code {}", "otp_code_length": 6})

    assert status == 200


async def test_a_whatsapp_send_no_vendor_can_take_is_accepted_when_a_later_workflow_step_goes_by_sms(
    start_local_api: LocalApiFactory,
) -> None:
    workflow = {"steps": [{"deadline": 3}, {"channel": "SMS"}]}
    api = await start_local_api(providers=[MESSAGE_CENTRAL], workflows={"default": workflow})

    status, _ = await api.post(SEND, {"recipient": random_number(), "content": "Code {}", "channel": "WhatsApp"})

    assert status == 200
    assert api.queued() == 1


async def test_a_whatsapp_send_no_vendor_can_take_is_422_without_a_workflow_that_changes_channel(
    start_local_api: LocalApiFactory,
) -> None:
    api = await start_local_api(providers=[MESSAGE_CENTRAL])

    status, answer = await api.post(SEND, {"recipient": random_number(), "content": "Code {}", "channel": "WhatsApp"})

    assert status == 422
    assert answer["detail"][0]["msg"].endswith("messagecentral: no WhatsApp channel")
    assert api.queued() == 0
