"""Errors of the producer side (HTTP API, Python client, store).

DispatcherError                the root; ``code`` is stable, ``status`` is the HTTP status the API answers
├── InvalidRequest             the request fails validation (422, D7's ``detail`` list)
├── Unauthorized               missing or wrong API token (401)
├── UnknownOtp                 no OTP has this id, or it is gone (404, MESSAGE_LOG_NOT_EXISTS)
├── UnknownOverride            no routing override is set for this country, channel and vendor (404)
├── ResendRefused              resend asked too soon (with ``retry_after``), too often, too late or locked (400)
├── NumberNotAllowed           the number's country is not allowed, or it is premium-rate (403)
├── Conflict                   an OTP is already open for the number, or the same request is in progress (409)
├── IdempotencyKeyReused       an Idempotency-Key came back with another body (422)
├── RateLimited                a send limit was reached; ``retry_after`` seconds until it lifts (429)
├── ServiceUnavailable         Redis or the broker did not answer in time (503)
└── VendorCheckUnavailable     the vendor that must check the code could not answer (503)
"""

from __future__ import annotations

from pydantic import ValidationError

from dispatcher.schemas import ValidationProblem


class DispatcherError(Exception):
    """Something the caller is told about, with a stable code."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, code: str | None = None) -> None:
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(message)


class InvalidRequest(DispatcherError):
    """The request does not validate; ``errors`` holds D7's ``{"loc", "msg", "type"}`` items."""

    status = 422
    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[ValidationProblem]) -> None:
        self.errors = errors
        super().__init__("; ".join(error.msg for error in errors))

    @classmethod
    def at(cls, loc: list[str | int], msg: str, kind: str = "value_error") -> InvalidRequest:
        """One problem, at ``loc``."""
        return cls([ValidationProblem(loc=loc, msg=msg, type=kind)])

    @classmethod
    def from_validation(cls, exc: ValidationError, *where: str) -> InvalidRequest:
        """Pydantic's errors in D7's shape, without echoing the input (it may hold a phone number)."""
        return cls(
            [
                ValidationProblem(loc=[*where, *error["loc"]], msg=error["msg"], type=error["type"])
                for error in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        )


class Unauthorized(DispatcherError):
    """Missing or invalid API token."""

    status = 401
    code = "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"


class UnknownOtp(DispatcherError):
    """No OTP with this id."""

    status = 404
    code = "MESSAGE_LOG_NOT_EXISTS"


class UnknownOverride(DispatcherError):
    """No routing override for this country, channel and vendor."""

    status = 404
    code = "OVERRIDE_NOT_FOUND"


class ResendRefused(DispatcherError):
    """The resend is not allowed now; ``retry_after`` seconds until it is, when that is known (too soon)."""

    status = 400

    def __init__(self, message: str, code: str, retry_after: int | None = None) -> None:
        self.retry_after = None if retry_after is None else max(1, retry_after)
        super().__init__(message, code=code)


class NumberNotAllowed(DispatcherError):
    """The recipient's country is not allowed, or its number is premium-rate (``code`` says which)."""

    status = 403
    code = "COUNTRY_NOT_ALLOWED"


class Conflict(DispatcherError):
    """The request collides with one already open or in progress; ``otp_id`` names it when known."""

    status = 409

    def __init__(self, message: str, code: str, otp_id: str | None = None) -> None:
        self.otp_id = otp_id
        super().__init__(message, code=code)


class IdempotencyKeyReused(DispatcherError):
    """The Idempotency-Key was used before with a different body."""

    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class RateLimited(DispatcherError):
    """A send limit was reached."""

    status = 429

    def __init__(self, message: str, code: str, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(message, code=code)


class ServiceUnavailable(DispatcherError):
    """Redis or the broker is down or too slow."""

    status = 503
    code = "SERVICE_UNAVAILABLE"


class VendorCheckUnavailable(DispatcherError):
    """The vendor that must check this code could not answer."""

    status = 503
    code = "VENDOR_UNAVAILABLE"
