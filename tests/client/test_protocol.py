"""The client reads every error the API renders as the exception of the same name, and other answers sensibly.

The bodies come from the server's own ``error_body``, so a change to an error's shape on either side fails here.
"""

from __future__ import annotations

import pytest

import otp_dispatcher_client as client
from dispatcher import errors as server
from dispatcher.app import error_body
from dispatcher.schemas import ValidationProblem
from otp_dispatcher_client import protocol

OTP_ID = "3f0e1d2c-0000-4000-8000-000000000000"
SERVER_ERRORS = [
    server.InvalidRequest([ValidationProblem(loc=["body", "recipient"], msg="bad number", type="string_pattern")]),
    server.Unauthorized("no token"),
    server.UnknownOtp("no such otp"),
    server.ResendRefused("too soon", code="RESEND_TOO_SOON"),
    server.NumberNotAllowed("not here"),
    server.Conflict("one is open", code="OTP_IN_FLIGHT", otp_id=OTP_ID),
    server.IdempotencyKeyReused("another body"),
    server.RateLimited("slow down", code="TOKEN_RATE_LIMITED", retry_after=7),
    server.ServiceUnavailable("redis is away"),
]


def read_error(error: server.DispatcherError) -> client.ApiError:
    rendered = error_body(error)
    assert rendered.body is not None
    return protocol.error(rendered.status, rendered.headers.get("Retry-After"), bytes(rendered.body))  # type: ignore[arg-type]


@pytest.mark.parametrize("error", SERVER_ERRORS, ids=lambda error: type(error).__name__)
def test_each_api_error_is_the_client_exception_of_the_same_name_with_its_code_and_status(
    error: server.DispatcherError,
) -> None:
    read = read_error(error)

    assert (type(read).__name__, read.code, read.status) == (type(error).__name__, error.code, error.status)


def test_a_vendor_that_cannot_check_the_code_is_service_unavailable() -> None:
    read = read_error(server.VendorCheckUnavailable("d7 is down"))

    assert (type(read), read.code, read.status) == (client.ServiceUnavailable, "VENDOR_UNAVAILABLE", 503)


def test_a_rate_limit_carries_retry_after() -> None:
    read = read_error(server.RateLimited("slow down", code="RECIPIENT_LIMIT_REACHED", retry_after=42))

    assert isinstance(read, client.RateLimited)
    assert read.retry_after == 42


def test_a_conflict_names_the_open_otp() -> None:
    read = read_error(server.Conflict("one is open", code="OTP_IN_FLIGHT", otp_id=OTP_ID))

    assert isinstance(read, client.Conflict)
    assert read.otp_id == OTP_ID


def test_an_invalid_request_carries_d7s_detail_items() -> None:
    problem = ValidationProblem(loc=["body", "recipient"], msg="bad number", type="string_pattern")

    read = read_error(server.InvalidRequest([problem]))

    assert isinstance(read, client.InvalidRequest)
    assert (read.message, read.problems) == (
        "bad number",
        (client.Problem(("body", "recipient"), "bad number", "string_pattern"),),
    )


def test_a_proxys_html_503_is_service_unavailable_with_the_status_as_its_code() -> None:
    read = protocol.error(503, None, b"<html><body>Bad gateway</body></html>")

    assert (type(read), read.code, read.status) == (client.ServiceUnavailable, "HTTP_503", 503)


def test_a_404_that_is_not_the_apis_unknown_otp_is_a_plain_api_error() -> None:
    read = protocol.error(404, None, b'{"detail": {"code": "NOT_FOUND", "message": "Not Found"}}')

    assert (type(read), read.code) == (client.ApiError, "NOT_FOUND")


def test_a_success_whose_body_is_not_the_documented_one_raises_unexpected_response() -> None:
    with pytest.raises(client.UnexpectedResponse) as raised:
        protocol.verify(OTP_ID, "123456").answer(200, None, b'{"status": "MAYBE"}')

    assert (raised.value.code, raised.value.status) == ("BAD_RESPONSE", 200)
