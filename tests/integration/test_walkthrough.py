"""The README walkthrough through the whole stack: API → Redis → Celery worker → sandbox D7 → verify."""

from tests.support import Api, random_number


async def test_a_sent_code_read_from_the_inbox_is_approved_and_the_report_shows_the_attempt(api: Api) -> None:
    recipient = random_number()
    status, sent = await api.post(
        "/verify/v1/otp/send-otp",
        {"originator": "SignOTP", "recipient": recipient, "content": "Greetings, your code is: {}", "expiry": "600"},
    )
    assert status == 200
    assert (sent["status"], sent["expiry"]) == ("OPEN", 600)

    report = await api.delivered(sent["otp_id"])
    message = await api.inbox(recipient)

    assert message["vendor"] == "d7"
    assert message["text"] == f"Greetings, your code is: {message['code']}"
    assert await api.verify(sent["otp_id"], message["code"]) == "APPROVED"
    report = await api.report(sent["otp_id"])
    assert report["status"] == "VERIFIED"
    assert report["delivered_by"] == "d7"
    assert report["recipient"] == recipient[:5] + "****" + recipient[-2:]
    assert [(a["vendor"], a["outcome"], a["send_number"]) for a in report["attempts"]] == [("d7", "DELIVERED", 1)]


async def test_d7_verification_is_forwarded_to_d7(api: Api) -> None:
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)
    await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]

    assert await api.verify(otp_id, code) == "APPROVED"
    assert (await api.calls())["d7"]["verify-otp"] == 1


async def test_a_template_id_sent_as_a_string_is_delivered(api: Api) -> None:
    recipient = random_number()
    status, sent = await api.post("/verify/v1/otp/send-otp", {"recipient": recipient, "template_id": "25"})

    assert status == 200
    report = await api.delivered(sent["otp_id"])
    assert report["delivered_by"] == "d7"
