"""The sandbox Message Central VerifyNow: tokens, send, validate, errors in responseCode."""

import base64

from tests.sandbox.conftest import CREDENTIALS, Sandbox

TOKEN = "/auth/v1/authentication/token"
SEND, VALIDATE = "/verification/v2/verification/send", "/verification/v2/verification/validateOtp"
CUSTOMER = CREDENTIALS.messagecentral_customer_id


async def token(sandbox: Sandbox) -> str:
    key = base64.b64encode(CREDENTIALS.messagecentral_password.encode()).decode()
    status, body = await sandbox.request(
        "GET", TOKEN, params={"customerId": CUSTOMER, "key": key, "scope": "NEW", "country": "IN"}
    )
    assert status == 200, body
    return str(body["token"])


async def send(sandbox: Sandbox, auth: str, number: str = "9812345678", country: str = "91") -> tuple[int, dict]:  # type: ignore[type-arg]
    params = {"countryCode": country, "customerId": CUSTOMER, "flowType": "SMS", "mobileNumber": number}
    status, body = await sandbox.request("POST", SEND, params=params, headers={"authToken": auth})
    return status, body


async def validate(sandbox: Sandbox, auth: str, verification_id: str, code: str) -> int:
    params = {"customerId": CUSTOMER, "verificationId": verification_id, "code": code}
    _, body = await sandbox.request("GET", VALIDATE, params=params, headers={"authToken": auth})
    return int(body["responseCode"])


async def test_a_wrong_key_gets_no_token(sandbox: Sandbox) -> None:
    status, _ = await sandbox.request("GET", TOKEN, params={"customerId": CUSTOMER, "key": "eA==", "scope": "NEW"})

    assert status == 401


async def test_send_without_a_valid_token_is_401(sandbox: Sandbox) -> None:
    assert (await send(sandbox, "forged"))[0] == 401


async def test_send_delivers_a_four_digit_code_by_default(sandbox: Sandbox) -> None:
    status, body = await send(sandbox, await token(sandbox))
    message = (await sandbox.request("GET", "/inbox/+919812345678"))[1]

    assert (status, body["responseCode"], message["reference"]) == (200, 200, body["data"]["verificationId"])
    assert len(message["code"]) == 4


async def test_a_second_send_while_one_is_pending_is_506(sandbox: Sandbox) -> None:
    auth = await token(sandbox)
    await send(sandbox, auth)

    assert (await send(sandbox, auth))[1]["responseCode"] == 506


async def test_an_invalid_country_code_is_511(sandbox: Sandbox) -> None:
    assert (await send(sandbox, await token(sandbox), country="0"))[1]["responseCode"] == 511


async def test_the_right_code_completes_then_is_already_verified(sandbox: Sandbox) -> None:
    auth = await token(sandbox)
    verification_id = (await send(sandbox, auth))[1]["data"]["verificationId"]
    code = (await sandbox.request("GET", "/inbox/+919812345678"))[1]["code"]

    assert await validate(sandbox, auth, verification_id, code) == 200
    assert await validate(sandbox, auth, verification_id, code) == 703


async def test_wrong_codes_are_702_then_800(sandbox: Sandbox) -> None:
    auth = await token(sandbox)
    verification_id = (await send(sandbox, auth))[1]["data"]["verificationId"]

    assert [await validate(sandbox, auth, verification_id, "x") for _ in range(6)] == [702] * 5 + [800]


async def test_an_unknown_verification_id_is_505(sandbox: Sandbox) -> None:
    assert await validate(sandbox, await token(sandbox), "123", "1234") == 505


async def test_an_undelivered_code_never_reaches_the_phone_though_the_send_succeeded(sandbox: Sandbox) -> None:
    await sandbox.fault("messagecentral", undelivered_rate=1.0)

    status, body = await send(sandbox, await token(sandbox))

    assert (status, body["responseCode"]) == (200, 200)
    assert (await sandbox.request("GET", "/inbox/+919812345678"))[0] == 404
