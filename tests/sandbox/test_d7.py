"""The sandbox D7 Verify: D7's auth, bodies, code checks, errors and delivery reports."""

import uuid
from typing import Any

from tests.sandbox.conftest import D7_AUTH, Receiver, Sandbox
from tests.support import wait_for

SEND, RESEND, VERIFY = "/verify/v1/otp/send-otp", "/verify/v1/otp/resend-otp", "/verify/v1/otp/verify-otp"


async def sent(sandbox: Sandbox, **fields: object) -> tuple[str, str]:
    body = {"recipient": "+33612345678", "content": "Code {}", **fields}
    status, answer = await sandbox.request("POST", SEND, json=body, headers=D7_AUTH)
    assert status == 200, answer
    message = (await sandbox.request("GET", "/inbox/+33612345678"))[1]
    return answer["otp_id"], message["code"]


async def verify(sandbox: Sandbox, otp_id: str, code: str) -> str:
    _, answer = await sandbox.request("POST", VERIFY, json={"otp_id": otp_id, "otp_code": code}, headers=D7_AUTH)
    return str(answer["status"])


async def test_a_wrong_token_gets_d7s_401_body(sandbox: Sandbox) -> None:
    status, body = await sandbox.request("POST", SEND, json={}, headers={"Authorization": "Bearer nope"})

    assert (status, body["detail"]["code"]) == (401, "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED")


async def test_send_puts_the_code_in_the_message_and_answers_open(sandbox: Sandbox) -> None:
    status, answer = await sandbox.request(
        "POST", SEND, json={"recipient": "+33612345678", "content": "Code {}", "expiry": "300"}, headers=D7_AUTH
    )
    message = (await sandbox.request("GET", "/inbox/+33612345678"))[1]

    assert (status, answer["status"], answer["expiry"]) == (200, "OPEN", 300)
    assert message["text"] == f"Code {message['code']}"
    assert len(message["code"]) == 6


async def test_content_without_a_placeholder_gets_d7s_422_list(sandbox: Sandbox) -> None:
    status, body = await sandbox.request(
        "POST", SEND, json={"recipient": "+33612345678", "content": "no code"}, headers=D7_AUTH
    )

    assert status == 422
    assert set(body["detail"][0]) == {"loc", "msg", "type"}


async def test_no_credit_gets_d7s_402_body(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", no_credit=True)

    status, body = await sandbox.request("POST", SEND, json={}, headers=D7_AUTH)

    assert (status, body["detail"][0]["code"]) == (402, "INSUFFICIENT_CREDIT")


async def test_the_right_code_is_approved_then_already_verified(sandbox: Sandbox) -> None:
    otp_id, code = await sent(sandbox)

    assert await verify(sandbox, otp_id, code) == "APPROVED"
    assert await verify(sandbox, otp_id, code) == "ALREADY_VERIFIED"


async def test_five_wrong_codes_lock_the_otp(sandbox: Sandbox) -> None:
    otp_id, code = await sent(sandbox)
    for _ in range(5):
        assert await verify(sandbox, otp_id, "0000000") == "FAILED"

    assert await verify(sandbox, otp_id, code) == "FAILED"


async def test_an_unknown_otp_is_d7s_invalid_code_400(sandbox: Sandbox) -> None:
    status, body = await sandbox.request("POST", VERIFY, json={"otp_id": "x", "otp_code": "1"}, headers=D7_AUTH)

    assert (status, body["detail"]["code"]) == (400, "INVALID_OTP_CODE")


async def test_resend_repeats_the_same_code_and_counts(sandbox: Sandbox) -> None:
    otp_id, code = await sent(sandbox, retry_delay=0)

    status, answer = await sandbox.request("POST", RESEND, json={"otp_id": otp_id}, headers=D7_AUTH)

    assert (status, answer["resend_count"]) == (200, 1)
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[1]["code"] == code


async def test_a_resend_sooner_than_retry_delay_is_refused(sandbox: Sandbox) -> None:
    otp_id, _ = await sent(sandbox, retry_delay=60)

    status, body = await sandbox.request("POST", RESEND, json={"otp_id": otp_id}, headers=D7_AUTH)

    assert (status, body["detail"]["code"]) == (400, "RETRY_DELAY_NOT_REACHED")


async def test_the_report_of_an_unknown_otp_is_404(sandbox: Sandbox) -> None:
    status, body = await sandbox.request("GET", "/verify/v1/report/nope", headers=D7_AUTH)

    assert (status, body["detail"]["code"]) == (404, "MESSAGE_LOG_NOT_EXISTS")


async def test_a_delivered_message_gets_d7s_delivery_report_form_at_the_success_url(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    urls = {"success_url": receiver.url + "/ok", "failure_url": receiver.url + "/failed"}
    otp_id, _ = await sent(sandbox, originator="SignOTP", **urls)

    [report] = await receiver.wait()

    assert (report.method, report.path, report.content_type) == ("POST", "/ok", "application/x-www-form-urlencoded")
    assert report.fields == {
        "request_id": otp_id,
        "msg_id": report.fields["msg_id"],
        "recipient": "+33612345678",
        "originator": "SignOTP",
        "status": "delivered",
    }
    assert uuid.UUID(report.fields["msg_id"])


async def test_an_undelivered_message_is_reported_at_the_failure_url_and_never_reaches_the_phone(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.fault("d7", undelivered_rate=1.0)
    body = {"recipient": "+33612345678", "content": "Code {}", "failure_url": receiver.url + "/failed"}
    _, answer = await sandbox.request("POST", SEND, json=body, headers=D7_AUTH)

    [report] = await receiver.wait()

    assert (report.path, report.fields["request_id"], report.fields["status"]) == (
        "/failed",
        answer["otp_id"],
        "undelivered",
    )
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404


async def test_a_fault_can_ask_for_the_other_documented_spelling_of_undelivered(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.fault("d7", undelivered_rate=1.0, undelivered_status="un_delivered")
    body = {"recipient": "+33612345678", "content": "Code {}", "failure_url": receiver.url + "/failed"}
    await sandbox.request("POST", SEND, json=body, headers=D7_AUTH)

    assert (await receiver.wait())[0].fields["status"] == "un_delivered"


async def test_each_message_resent_gets_its_own_report(sandbox: Sandbox, receiver: Receiver) -> None:
    otp_id, _ = await sent(sandbox, retry_delay=0, success_url=receiver.url + "/ok")
    await sandbox.request("POST", RESEND, json={"otp_id": otp_id}, headers=D7_AUTH)

    first, second = await receiver.wait(2)

    assert first.fields["request_id"] == second.fields["request_id"] == otp_id
    assert first.fields["msg_id"] != second.fields["msg_id"]


async def test_a_callback_url_that_is_not_http_gets_d7s_422(sandbox: Sandbox) -> None:
    body = {"recipient": "+33612345678", "content": "Code {}", "success_url": "ftp://example.com/x"}

    assert (await sandbox.request("POST", SEND, json=body, headers=D7_AUTH))[0] == 422


async def test_the_message_log_lists_each_message_sent_until_its_outcome_then_its_status(sandbox: Sandbox) -> None:
    # Given a message D7 will report undelivered in 300 ms
    await sandbox.fault("d7", undelivered_rate=1.0, receipt_delay_ms=300)
    status, answer = await sandbox.request(
        "POST", SEND, json={"recipient": "+33612345678", "content": "Code {}"}, headers=D7_AUTH
    )
    assert status == 200, answer
    log = f"/report/v1/message-log/{answer['otp_id']}"

    # When D7's delivery status is asked at once, then after the outcome is known
    before = (await sandbox.request("GET", log, headers=D7_AUTH))[1]

    async def reported() -> dict[str, Any] | None:
        body = (await sandbox.request("GET", log, headers=D7_AUTH))[1]
        return dict(body) if body["messages"][0]["status"] != "sent" else None

    after = await wait_for(reported, within=5.0)

    # Then the message is "sent" (awaiting acknowledgement) until then, "un_delivered" after
    assert (before["request_id"], before["messages"][0]["status"]) == (answer["otp_id"], "sent")
    assert after["messages"][0]["status"] == "un_delivered"


async def test_the_message_log_needs_d7s_token_and_answers_404_for_an_unknown_id(sandbox: Sandbox) -> None:
    log = f"/report/v1/message-log/{uuid.uuid4()}"

    unauthorised = await sandbox.request("GET", log)
    unknown = await sandbox.request("GET", log, headers=D7_AUTH)

    assert unauthorised[0] == 401
    assert (unknown[0], unknown[1]["detail"]["code"]) == (404, "MESSAGE_LOG_NOT_EXISTS")
