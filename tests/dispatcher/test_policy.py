"""A send request becomes an OtpSpec with the policy's defaults for what it leaves out; pure, no I/O."""

import pytest

from config import OtpPolicy
from dispatcher.errors import InvalidRequest
from dispatcher.policy import otp_spec
from dispatcher.schemas import SendOtpRequest

POLICY = OtpPolicy(expiry=300, retry_delay=30, retry_count=3, otp_code_length=8, max_wrong_attempts=4)


def request(**fields: object) -> SendOtpRequest:
    return SendOtpRequest.model_validate({"recipient": "+33612345678", "content": "Your code is {}", **fields})


def test_what_the_request_leaves_out_comes_from_the_policy() -> None:
    spec = otp_spec(request(), POLICY)

    assert (spec.expiry, spec.resend_delay, spec.resend_limit) == (300, 30, 3)
    assert (spec.code_length, spec.otp_type, spec.max_wrong_attempts) == (8, "numeric", 4)
    assert (spec.originator, spec.channel, spec.data_coding) == ("Verify", "SMS", "text")


def test_what_the_request_gives_wins_over_the_policy() -> None:
    spec = otp_spec(request(expiry=60, retry_delay=0, retry_count=1, otp_code_length=10, otp_type="alpha"), POLICY)

    assert (spec.expiry, spec.resend_delay, spec.resend_limit) == (60, 0, 1)
    assert (spec.code_length, spec.otp_type) == (10, "alpha")


def test_postback_urls_are_kept_as_given() -> None:
    spec = otp_spec(request(success_url="https://example.com/ok"), POLICY)

    assert (spec.success_url, spec.failure_url) == ("https://example.com/ok", None)


def test_codes_weaker_than_the_minimum_are_refused_at_the_length_field() -> None:
    with pytest.raises(InvalidRequest) as refused:
        otp_spec(request(otp_code_length=5), POLICY)

    assert refused.value.errors[0].loc == ["body", "otp_code_length"]
