"""The sandbox Octopush OTP: header auth, generate, every validate code, and acknowledgements of receipt."""

import re

import pytest

from tests.sandbox.conftest import OCTOPUSH_AUTH, Receiver, Sandbox

GENERATE, VALIDATE = "/v1/public/service/otp/generate", "/v1/public/service/otp/validate"


async def generated(sandbox: Sandbox, **fields: object) -> tuple[str, str]:
    body = {"phone_number": "+33612345678", "text": "Code {code}", **fields}
    status, answer = await sandbox.request("POST", GENERATE, json=body, headers=OCTOPUSH_AUTH)
    assert (status, answer["code"]) == (200, 0), answer
    return answer["otp_request_token"], (await sandbox.request("GET", "/inbox/+33612345678"))[1]["code"]


async def validate(sandbox: Sandbox, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    status, answer = await sandbox.request("PUT", VALIDATE, json=body, headers=OCTOPUSH_AUTH)
    return status, answer


async def test_wrong_credentials_are_401(sandbox: Sandbox) -> None:
    status, body = await sandbox.request("POST", GENERATE, json={}, headers={"api-login": "x", "api-key": "y"})

    assert (status, body["code"]) == (401, 101)


async def test_generate_sends_a_code_of_the_asked_length_in_place_of_the_placeholder(sandbox: Sandbox) -> None:
    _, code = await generated(sandbox, code_length=8)
    message = (await sandbox.request("GET", "/inbox/+33612345678"))[1]

    assert (len(code), message["text"]) == (8, f"Code {code}")


async def test_a_voice_sms_reaches_the_inbox_marked_as_a_call(sandbox: Sandbox) -> None:
    token, code = await generated(sandbox, channel="voice_sms", voice_language="fr-FR", voice_gender="female")
    message = (await sandbox.request("GET", "/inbox/+33612345678"))[1]

    assert (message["channel"], message["text"], message["reference"]) == ("voice_sms", f"Code {code}", token)


async def test_an_sms_reaches_the_inbox_as_an_sms(sandbox: Sandbox) -> None:
    await generated(sandbox)

    assert (await sandbox.request("GET", "/inbox/+33612345678"))[1]["channel"] == "sms"


async def test_a_channel_octopush_does_not_have_is_an_invalid_parameter(sandbox: Sandbox) -> None:
    body = {"phone_number": "+33612345678", "channel": "whatsapp"}
    status, answer = await sandbox.request("POST", GENERATE, json=body, headers=OCTOPUSH_AUTH)

    assert (status, answer["code"]) == (400, 100)


async def test_the_right_code_validates_once(sandbox: Sandbox) -> None:
    token, code = await generated(sandbox)

    assert await validate(sandbox, {"code": code, "otp_request_token": token}) == (
        200,
        {"code": 0, "message": "success"},
    )
    assert (await validate(sandbox, {"code": code, "otp_request_token": token}))[1]["code"] == 198


async def test_a_wrong_code_is_199_with_the_attempts_left(sandbox: Sandbox) -> None:
    token, _ = await generated(sandbox, max_wrong_attempts=3, allow_digits=False, allow_upper_case=True)

    status, body = await validate(sandbox, {"code": "0000", "otp_request_token": token})

    assert (status, body["code"], body["remaining_number_of_attempts"]) == (400, 199, 2)


async def test_after_max_wrong_attempts_it_is_196(sandbox: Sandbox) -> None:
    token, code = await generated(sandbox, max_wrong_attempts=1, allow_digits=False, allow_upper_case=True)
    await validate(sandbox, {"code": "0000", "otp_request_token": token})

    assert (await validate(sandbox, {"code": code, "otp_request_token": token}))[1]["code"] == 196


@pytest.mark.parametrize(
    ("body", "code"),
    [({"otp_request_token": "t"}, 194), ({"code": "1234"}, 195), ({"code": "1", "otp_request_token": "no"}, 198)],
)
async def test_missing_fields_and_unknown_tokens_have_their_codes(
    sandbox: Sandbox, body: dict[str, object], code: int
) -> None:
    assert (await validate(sandbox, body))[1]["code"] == code


async def test_no_credit_is_103(sandbox: Sandbox) -> None:
    await sandbox.fault("octopush", no_credit=True)

    status, body = await sandbox.request("POST", GENERATE, json={}, headers=OCTOPUSH_AUTH)

    assert (status, body["code"]) == (402, 103)


async def test_a_delivered_code_is_acknowledged_in_json_at_the_account_callback(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.request("PUT", "/_sandbox/callbacks/octopush", json={"url": receiver.url + "/octopush"})
    body = {"phone_number": "+33612345678", "text": "Code {code}"}
    _, answer = await sandbox.request("POST", GENERATE, json=body, headers=OCTOPUSH_AUTH)

    [receipt] = await receiver.wait()

    assert (receipt.method, receipt.path, receipt.content_type) == ("POST", "/octopush", "application/json")
    assert receipt.fields == {
        "channel": "sms",
        "message_id": answer["ticket_number"],
        "number": "+33612345678",
        "status": "DELIVERED",
        "delivery_date": receipt.fields["delivery_date"],
    }
    assert re.fullmatch(r"sms_[0-9a-f]{13}", answer["ticket_number"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", receipt.fields["delivery_date"])


async def test_an_undelivered_code_is_acknowledged_with_the_status_the_fault_asks_for(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.request("PUT", "/_sandbox/callbacks/octopush", json={"url": receiver.url + "/octopush"})
    await sandbox.fault("octopush", undelivered_rate=1.0, undelivered_status="BLACKLISTED_NUMBER")
    await sandbox.request("POST", GENERATE, json={"phone_number": "+33612345678"}, headers=OCTOPUSH_AUTH)

    [receipt] = await receiver.wait()

    assert receipt.fields["status"] == "BLACKLISTED_NUMBER"
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404


async def test_an_undelivered_code_is_not_delivered_by_default(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.request("PUT", "/_sandbox/callbacks/octopush", json={"url": receiver.url + "/octopush"})
    await sandbox.fault("octopush", undelivered_rate=1.0)
    await sandbox.request("POST", GENERATE, json={"phone_number": "+33612345678"}, headers=OCTOPUSH_AUTH)

    assert (await receiver.wait())[0].fields["status"] == "NOT_DELIVERED"
