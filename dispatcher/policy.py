"""The one place a send request becomes an ``OtpSpec``: the dispatcher's ``OtpPolicy`` fills what it left out."""

from __future__ import annotations

from typing import TypeVar

from config import OtpPolicy, code_strength_problem
from dispatcher.errors import InvalidRequest
from dispatcher.schemas import SendOtpRequest
from vendors import OtpSpec

_T = TypeVar("_T")


def otp_spec(request: SendOtpRequest, policy: OtpPolicy) -> OtpSpec:
    """The OTP ``request`` asks for, defaults applied; ``InvalidRequest`` if its codes would be too weak."""
    otp_type = _or(request.otp_type, policy.otp_type)
    code_length = _or(request.otp_code_length, policy.otp_code_length)
    weakness = code_strength_problem(code_length, otp_type)
    if weakness:
        raise InvalidRequest.at(["body", "otp_code_length"], weakness)
    return OtpSpec(
        recipient=request.recipient,
        originator=request.originator,
        content=request.content,
        template_id=request.template_id,
        channel=request.channel,
        data_coding=request.data_coding,
        otp_type=otp_type,
        code_length=code_length,
        expiry=_or(request.expiry, policy.expiry),
        resend_delay=_or(request.retry_delay, policy.retry_delay),
        resend_limit=_or(request.retry_count, policy.retry_count),
        max_wrong_attempts=policy.max_wrong_attempts,
        success_url=None if request.success_url is None else str(request.success_url),
        failure_url=None if request.failure_url is None else str(request.failure_url),
    )


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value
