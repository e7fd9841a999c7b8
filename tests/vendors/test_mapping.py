"""Every transport failure and every documented vendor answer maps to one error kind (or a result),
through the real adapters over real HTTP to a canned vendor."""

from typing import Any

import aiohttp
import pytest

from config import ProviderSettings
from tests.vendors.canned import Answer, Canned
from tests.vendors.specs import SPEC
from vendors import (
    PROVIDER_CLASSES,
    OutcomeUnknown,
    Provider,
    ProviderError,
    Rejected,
    TemporaryError,
    VendorUnavailable,
)

CREDENTIALS: dict[str, dict[str, str]] = {
    "d7": {"api_token": "token"},
    "octopush": {"login": "login", "password": "key"},
    "messagecentral": {"login": "C-1", "password": "secret", "account_country": "IN"},
    "console": {},
}
MC_TOKEN = "/auth/v1/authentication/token"


def adapter(kind: str, url: str, session: aiohttp.ClientSession, timeout: float = 0.5) -> Provider:
    settings = ProviderSettings.model_validate(
        {"name": kind, "kind": kind, "base_url": url, "timeout": timeout, **CREDENTIALS[kind]}
    )
    return PROVIDER_CLASSES[settings.kind](settings, session)


def mc_body(code: int, data: Any = None) -> dict[str, Any]:
    return {"responseCode": code, "message": "x", "data": data}


# transport -----------------------------------------------------------------------------------------


async def test_a_vendor_that_refuses_connections_is_temporary(session: aiohttp.ClientSession) -> None:
    with pytest.raises(TemporaryError) as error:
        await adapter("d7", "http://127.0.0.1:1", session).send(SPEC, otp_id="otp-1", expiry=600)

    assert error.value.code == "CONNECT_FAILED"
    assert not isinstance(error.value, OutcomeUnknown)


async def test_a_vendor_slower_than_the_timeout_is_outcome_unknown(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(delay=2.0, body={"otp_id": "late"})

    with pytest.raises(OutcomeUnknown):
        await adapter("d7", url, session, timeout=0.2).send(SPEC, otp_id="otp-1", expiry=600)


async def test_a_connection_dropped_after_the_request_is_outcome_unknown(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(drop=True)

    with pytest.raises(OutcomeUnknown):
        await adapter("d7", url, session).send(SPEC, otp_id="otp-1", expiry=600)


@pytest.mark.parametrize("kind", ["d7", "octopush", "messagecentral"])
@pytest.mark.parametrize("raw", [b"<html>502 Bad Gateway</html>", b"", b"{not json"])
async def test_a_garbled_success_is_temporary(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, kind: str, raw: bytes
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=200, raw=raw)

    with pytest.raises(TemporaryError) as error:
        await adapter(kind, url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert error.value.code == "BAD_RESPONSE"


@pytest.mark.parametrize("kind", ["d7", "octopush", "messagecentral"])
@pytest.mark.parametrize("raw", [b"<html>oops</html>", b""])
async def test_a_garbled_error_page_is_classified_not_crashed(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, kind: str, raw: bytes
) -> None:
    vendor, url = canned
    vendor.answers[MC_TOKEN] = Answer(body={"status": 200, "token": "t"})
    vendor.default = Answer(status=502, raw=raw)

    with pytest.raises(TemporaryError):
        await adapter(kind, url, session).send(SPEC, otp_id="otp-1", expiry=600)


# D7 ------------------------------------------------------------------------------------------------

D7_SEND = [
    (
        401,
        {"detail": {"code": "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"}},
        VendorUnavailable,
        "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED",
    ),
    (402, {"detail": [{"code": "INSUFFICIENT_CREDIT", "message": "m"}]}, VendorUnavailable, "INSUFFICIENT_CREDIT"),
    (400, {"detail": {"code": "BAD_REQUEST"}}, Rejected, "BAD_REQUEST"),
    (404, {"detail": {"code": "MESSAGE_LOG_NOT_EXISTS"}}, Rejected, "MESSAGE_LOG_NOT_EXISTS"),
    (422, {"detail": [{"loc": ["body"], "msg": "m", "type": "t"}]}, Rejected, "HTTP_422"),
    (429, {"detail": {"code": "TOO_MANY_REQUESTS"}}, TemporaryError, "TOO_MANY_REQUESTS"),
    (500, None, TemporaryError, "HTTP_500"),
    (503, None, TemporaryError, "HTTP_503"),
    (200, {"status": "accepted"}, TemporaryError, "BAD_RESPONSE"),
]


@pytest.mark.parametrize(("status", "body", "kind", "code"), D7_SEND)
async def test_each_d7_send_answer_maps_to_its_kind(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, body: Any, kind: type, code: str
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body=body)

    with pytest.raises(ProviderError) as error:
        await adapter("d7", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert type(error.value) is kind
    assert error.value.code == code


async def test_d7_send_passes_the_request_through_with_the_bearer_token(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"otp_id": "d7-1", "status": "OPEN", "expiry": 600})

    reference = await adapter("d7", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    sent = vendor.requests[0]
    assert reference == "d7-1"
    assert sent["headers"]["Authorization"] == "Bearer token"
    assert sent["json"]["content"] == "Your code is {}"
    assert (sent["json"]["otp_code_length"], sent["json"]["otp_type"]) == (6, "numeric")
    assert (sent["json"]["retry_delay"], sent["json"]["retry_count"]) == (60, 5)


async def test_a_d7_resend_it_refuses_becomes_a_new_send(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.answers["/verify/v1/otp/resend-otp"] = Answer(status=400, body={"detail": {"code": "RETRY_DELAY"}})
    vendor.answers["/verify/v1/otp/send-otp"] = Answer(body={"otp_id": "d7-2"})

    assert await adapter("d7", url, session).resend("d7-1", SPEC, otp_id="otp-1", expiry=600) == "d7-2"
    assert [r["path"] for r in vendor.requests] == ["/verify/v1/otp/resend-otp", "/verify/v1/otp/send-otp"]


@pytest.mark.parametrize(
    ("status", "body", "approved"),
    [
        (200, {"status": "APPROVED"}, True),
        (200, {"status": "ALREADY_VERIFIED"}, True),
        (200, {"status": "FAILED"}, False),
        (200, {"status": "EXPIRED"}, False),
        (400, {"detail": {"code": "INVALID_OTP_CODE"}}, False),
    ],
)
async def test_each_d7_verify_answer_is_approved_or_not(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, body: Any, approved: bool
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body=body)

    assert await adapter("d7", url, session).check("d7-1", "123456") is approved


@pytest.mark.parametrize(("status", "kind"), [(500, TemporaryError), (401, VendorUnavailable)])
async def test_a_d7_verify_that_cannot_answer_raises(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, kind: type
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body=None)

    with pytest.raises(kind):
        await adapter("d7", url, session).check("d7-1", "123456")


# Octopush ------------------------------------------------------------------------------------------

OCTOPUSH_SEND = [
    (401, 101, VendorUnavailable),
    (403, 101, VendorUnavailable),
    (402, 103, VendorUnavailable),
    (400, 102, VendorUnavailable),
    (400, 103, VendorUnavailable),
    (400, 100, Rejected),
    (429, 0, TemporaryError),
    (500, 0, TemporaryError),
]


@pytest.mark.parametrize(("status", "code", "kind"), OCTOPUSH_SEND)
async def test_each_octopush_generate_answer_maps_to_its_kind(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, code: int, kind: type
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body={"code": code, "message": "m"})

    with pytest.raises(ProviderError) as error:
        await adapter("octopush", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert type(error.value) is kind


async def test_octopush_generate_sends_its_headers_and_placeholder_and_returns_the_token(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"code": 0, "message": "ok", "ticket_number": "t", "otp_request_token": "tok"})

    assert await adapter("octopush", url, session).send(SPEC, otp_id="otp-1", expiry=600) == "tok"
    sent = vendor.requests[0]
    assert (sent["headers"]["api-login"], sent["headers"]["api-key"]) == ("login", "key")
    assert sent["json"]["text"] == "Your code is {code}"
    assert (sent["json"]["allow_digits"], sent["json"]["allow_upper_case"]) == (True, False)


async def test_an_octopush_sms_goes_out_on_its_sms_channel_with_no_voice(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"code": 0, "message": "ok", "ticket_number": "t", "otp_request_token": "tok"})

    await adapter("octopush", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert vendor.requests[0]["json"]["channel"] == "sms"
    assert "voice_language" not in vendor.requests[0]["json"]


@pytest.mark.parametrize(
    ("recipient", "language"),
    [("+33612345678", "fr-FR"), ("+4915123456789", "de-DE"), ("+12025550123", "en-US"), ("+819012345678", "en-GB")],
)
async def test_an_octopush_voice_step_calls_in_the_language_of_the_numbers_country_else_british_english(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, recipient: str, language: str
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"code": 0, "message": "ok", "ticket_number": "t", "otp_request_token": "tok"})
    voice = SPEC.model_copy(update={"channel": "voice", "recipient": recipient})

    assert await adapter("octopush", url, session).send(voice, otp_id="otp-1", expiry=600) == "tok"

    sent = vendor.requests[0]["json"]
    assert (sent["channel"], sent["voice_language"], sent["phone_number"]) == ("voice_sms", language, recipient)


async def test_octopush_refuses_a_channel_it_does_not_have_without_calling(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned

    with pytest.raises(Rejected):
        await adapter("octopush", url, session).send(
            SPEC.model_copy(update={"channel": "WhatsApp"}), otp_id="o", expiry=60
        )

    assert vendor.requests == []


@pytest.mark.parametrize(
    ("status", "code", "approved"),
    [(200, 0, True), (400, 199, False), (400, 196, False), (400, 197, False), (400, 198, False)],
)
async def test_each_octopush_validate_answer_is_approved_or_not(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, code: int, approved: bool
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body={"code": code, "message": "m"})

    assert await adapter("octopush", url, session).check("tok", "123456") is approved


@pytest.mark.parametrize(
    ("status", "code", "kind"), [(400, 194, Rejected), (400, 195, Rejected), (500, 0, TemporaryError)]
)
async def test_an_octopush_validate_that_cannot_answer_raises(
    canned: tuple[Canned, str], session: aiohttp.ClientSession, status: int, code: int, kind: type
) -> None:
    vendor, url = canned
    vendor.default = Answer(status=status, body={"code": code, "message": "m"})

    with pytest.raises(kind):
        await adapter("octopush", url, session).check("tok", "123456")


# Message Central -----------------------------------------------------------------------------------

MC_SEND = [
    (400, 501, VendorUnavailable),
    (400, 511, VendorUnavailable),
    (402, 402, VendorUnavailable),
    (400, 506, TemporaryError),
    (400, 505, Rejected),
    (400, 400, Rejected),
    (500, 500, TemporaryError),
]


@pytest.fixture
def mc(canned: tuple[Canned, str]) -> tuple[Canned, str]:
    vendor, url = canned
    vendor.answers[MC_TOKEN] = Answer(body={"status": 200, "token": "mc-token"})
    return vendor, url


@pytest.mark.parametrize(("status", "code", "kind"), MC_SEND)
async def test_each_message_central_send_answer_maps_to_its_kind(
    mc: tuple[Canned, str], session: aiohttp.ClientSession, status: int, code: int, kind: type
) -> None:
    vendor, url = mc
    vendor.default = Answer(status=status, body=mc_body(code))

    with pytest.raises(ProviderError) as error:
        await adapter("messagecentral", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert type(error.value) is kind


async def test_message_central_send_splits_the_number_and_caches_its_token(
    mc: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = mc
    vendor.default = Answer(body=mc_body(200, {"verificationId": "42"}))
    provider = adapter("messagecentral", url, session)

    assert await provider.send(SPEC, otp_id="otp-1", expiry=600) == "42"
    assert await provider.send(SPEC, otp_id="otp-1", expiry=600) == "42"

    paths = [r["path"] for r in vendor.requests]
    assert paths.count(MC_TOKEN) == 1
    token = vendor.requests[0]["query"]
    assert (token["customerId"], token["key"], token["scope"]) == ("C-1", "c2VjcmV0", "NEW")
    send = vendor.requests[1]
    assert (send["query"]["countryCode"], send["query"]["mobileNumber"]) == ("33", "612345678")
    assert send["headers"]["authToken"] == "mc-token"


async def test_a_message_central_401_fetches_a_new_token_once(
    mc: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = mc
    vendor.default = Answer(status=401, body=mc_body(401))

    with pytest.raises(VendorUnavailable):
        await adapter("messagecentral", url, session).send(SPEC, otp_id="otp-1", expiry=600)

    assert [r["path"] for r in vendor.requests].count(MC_TOKEN) == 2


@pytest.mark.parametrize(
    ("status", "body", "approved"),
    [
        (200, mc_body(200, {"verificationStatus": "VERIFICATION_COMPLETED"}), True),
        (400, mc_body(702), False),
        (400, mc_body(703), False),
        (400, mc_body(705), False),
        (400, mc_body(800), False),
        (400, mc_body(505), False),
    ],
)
async def test_each_message_central_validate_answer_is_approved_or_not(
    mc: tuple[Canned, str], session: aiohttp.ClientSession, status: int, body: Any, approved: bool
) -> None:
    vendor, url = mc
    vendor.default = Answer(status=status, body=body)

    assert await adapter("messagecentral", url, session).check("42", "1234") is approved


async def test_a_message_central_validate_that_cannot_answer_is_temporary(
    mc: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = mc
    vendor.default = Answer(status=500, body=mc_body(500))

    with pytest.raises(TemporaryError):
        await adapter("messagecentral", url, session).check("42", "1234")
