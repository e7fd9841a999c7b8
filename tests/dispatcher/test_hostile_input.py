"""Hostile requests to the API in-process: each gets a 4xx in D7's shape (or aiohttp's own 400 for a
broken request line or header), never a 5xx nor a hang, and the API stays healthy.

Requests go through ``http.client``, which sends exactly the bytes, headers and Content-Type given.
"""

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dispatcher.api import MAX_BODY_BYTES
from dispatcher.schemas import ErrorBody, ValidationErrorBody
from tests.dispatcher.conftest import TOKEN, call
from tests.support import random_number
from vendors import phone

POSTS = ("/verify/v1/otp/send-otp", "/verify/v1/otp/resend-otp", "/verify/v1/otp/verify-otp", "/verify/v1/verify-otp")
UNICODE_ZEROS = [
    chr(point)
    for point in range(0x110000)
    if unicodedata.category(chr(point)) == "Nd" and unicodedata.digit(chr(point)) == 0 and point != ord("0")
]
"""The zero of every decimal digit script but ASCII's (Arabic-Indic, fullwidth, Devanagari, ...)."""

bounded = settings(
    max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def post(url: str, path: str, body: bytes, token: str = TOKEN, **headers: str) -> tuple[int, bytes]:
    return call(url, "POST", path, body, Authorization=f"Bearer {token}", **headers)


def post_json(url: str, path: str, body: object, token: str = TOKEN) -> tuple[int, bytes]:
    return post(url, path, json.dumps(body).encode(), token, Content_Type="application/json")


def refusal(status: int, body: bytes) -> ErrorBody:
    """The ``{"detail": {"code", "message"}}`` body of a 4xx, which is exactly that shape."""
    assert 400 <= status < 500, (status, body)
    return ErrorBody.model_validate_json(body)


def invalid(status: int, body: bytes) -> ValidationErrorBody:
    """The ``{"detail": [{"loc", "msg", "type"}]}`` body of a 422, which is exactly that shape."""
    assert status == 422, (status, body)
    return ValidationErrorBody.model_validate_json(body)


def in_script(digits: str, zero: str) -> str:
    """``digits`` written in the digit script whose zero is ``zero``."""
    return "".join(chr(ord(zero) + int(digit)) for digit in digits)


def assert_healthy(url: str) -> None:
    assert call(url, "GET", "/healthz") == (200, b'{"status":"ok"}')


@pytest.mark.slow
@bounded
@given(path=st.sampled_from(POSTS), size=st.integers(MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES), json_body=st.booleans())
def test_a_body_over_the_limit_is_a_413_body_too_large(local_url: str, path: str, size: int, json_body: bool) -> None:
    body = (b'{"content": "' + b"x" * size + b'"}') if json_body else bytes(size)

    status, answer = post(local_url, path, body, Content_Type="application/json")

    assert (status, refusal(status, answer).detail.code) == (413, "BODY_TOO_LARGE")


@pytest.mark.slow
@bounded
@given(path=st.sampled_from(POSTS), depth=st.integers(500, 10_000), opener=st.sampled_from(["[", '{"a":']))
@example(path=POSTS[0], depth=8_000, opener="[")  # deeper than Python's recursion limit, within the body limit
@example(path=POSTS[0], depth=10_000, opener="[")
def test_deeply_nested_json_is_refused_and_the_api_stays_healthy(
    local_url: str, path: str, depth: int, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + closer * depth).encode()

    status, answer = post(local_url, path, body, Content_Type="application/json")

    if len(body) > MAX_BODY_BYTES:
        assert (status, refusal(status, answer).detail.code) == (413, "BODY_TOO_LARGE")
    else:
        assert all(problem.loc[0] == "body" for problem in invalid(status, answer).detail)
    assert_healthy(local_url)


def not_a_number(value: object) -> bool:
    """Not a valid international number by libphonenumber's metadata (human formatting is accepted)."""
    try:
        phone.parse(value.strip() if isinstance(value, str) else "")
    except phone.InvalidNumber:
        return True
    return False


recipients = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A0[1-9][0-9]{8}\Z"),  # a national number
    st.from_regex(r"\A\+[1-9][0-9]{0,6}\Z"),  # too short
    st.from_regex(r"\A\+[1-9][0-9]{15,20}\Z"),  # too long
    st.from_regex(r"\A\+0[0-9]{7,14}\Z"),  # no country code starts with 0
    st.from_regex(r"\A[1-9][0-9]{7,14}\Z"),  # no plus
    st.from_regex(r"\A\+[1-9][0-9 .()-]{7,18}\Z"),  # formatted
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=3), max_size=2),
).filter(not_a_number)


@pytest.mark.slow
@bounded
@given(recipient=recipients)
@example(recipient="+" + in_script("33612345678", "\u0660"))  # Arabic-Indic digits
@example(recipient="\uff0b" + in_script("33612345678", "\uff10"))  # fullwidth plus and digits
@example(recipient=33612345678)
def test_a_recipient_that_is_not_a_valid_number_is_a_422_at_body_recipient(local_url: str, recipient: object) -> None:
    status, answer = post_json(local_url, "/verify/v1/otp/send-otp", {"recipient": recipient, "content": "code {}"})

    assert [problem.loc for problem in invalid(status, answer).detail] == [["body", "recipient"]]


content_types = st.sampled_from(
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "text/json",
        "application/octet-stream",
        "application/jsonp",
        "",
    ]
)


@pytest.mark.slow
@bounded
@given(path=st.sampled_from(POSTS), content_type=content_types, form=st.booleans())
def test_a_body_sent_as_another_content_type_is_a_422_at_the_content_type(
    local_url: str, path: str, content_type: str, form: bool
) -> None:
    fields = {"recipient": random_number(), "content": "code {}", "otp_id": "abc", "otp_code": "123456"}
    body = "&".join(f"{key}={value}" for key, value in fields.items()) if form else json.dumps(fields)

    status, answer = post(local_url, path, body.encode(), Content_Type=content_type)

    assert [problem.loc for problem in invalid(status, answer).detail] == [["header", "Content-Type"]]


def test_a_form_body_without_a_content_type_is_a_422_malformed_json(local_url: str) -> None:
    status, answer = post(
        local_url, "/verify/v1/otp/send-otp", f"recipient={random_number()}&content=code+{{}}".encode()
    )

    assert invalid(status, answer).detail[0].type == "json_invalid"


def test_a_json_body_without_a_content_type_is_read_as_json_as_d7_does(local_url: str) -> None:
    body = json.dumps({"otp_id": "3f0e1d2c-0000-4000-8000-000000000000", "otp_code": "123456"}).encode()

    assert post(local_url, "/verify/v1/otp/verify-otp", body) == (200, b'{"status":"FAILED"}')


@pytest.mark.slow
@settings(bounded, max_examples=6)
@given(size=st.integers(8 * 1024, 64 * 1024), in_name=st.booleans(), path=st.sampled_from(["/healthz", POSTS[0]]))
@example(size=64 * 1024, in_name=False, path="/healthz")
def test_an_oversized_header_is_a_400_not_a_hang_nor_a_5xx(local_url: str, size: int, in_name: bool, path: str) -> None:
    name, value = ("X-" + "a" * size, "1") if in_name else ("X-Big", "a" * size)

    status, _ = call(local_url, "POST", path, b"{}", **{name: value, "Content-Type": "application/json"})

    assert status in (400, 431)
    assert_healthy(local_url)


def test_a_token_that_is_not_utf8_is_a_401(local_url: str) -> None:
    status, answer = call(local_url, "GET", "/verify/v1/report/abc", Authorization="Bearer \xff\xfe")

    assert (status, refusal(status, answer).detail.code) == (401, "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED")


def test_an_idempotency_key_that_is_not_utf8_is_a_422_at_the_header(local_url: str) -> None:
    body = json.dumps({"recipient": random_number(), "content": "code {}"}).encode()

    status, answer = post(
        local_url, "/verify/v1/otp/send-otp", body, Content_Type="application/json", Idempotency_Key="\xff"
    )

    assert [problem.loc for problem in invalid(status, answer).detail] == [["header", "Idempotency-Key"]]
