"""What the client raises: the API's documented errors, and failures to reach the API at all.

OtpDispatcherError             the root; ``code`` is a stable string, ``status`` the HTTP status (None: no answer)
├── ApiError                   the API answered with an error (any status; the classes below are the documented ones)
│   ├── ResendRefused          400: RESEND_TOO_SOON, RESEND_LIMIT_REACHED, OTP_EXPIRED, OTP_ALREADY_VERIFIED
│   ├── Unauthorized           401: ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED (missing or wrong token)
│   ├── NumberNotAllowed       403: COUNTRY_NOT_ALLOWED, PREMIUM_NUMBER_NOT_ALLOWED
│   ├── UnknownOtp             404: MESSAGE_LOG_NOT_EXISTS
│   ├── Conflict               409: OTP_IN_FLIGHT (``otp_id`` names the open OTP), or the same request in progress
│   ├── InvalidRequest         422: D7's ``detail`` list, in ``problems``
│   │   └── IdempotencyKeyReused   422: IDEMPOTENCY_KEY_REUSED (the key came back with another body)
│   ├── RateLimited            429: RECIPIENT_LIMIT_REACHED, TOKEN_RATE_LIMITED, IP_RATE_LIMITED, PREFIX_BLOCKED
│   ├── ServiceUnavailable     503: SERVICE_UNAVAILABLE, or VENDOR_UNAVAILABLE (the vendor that checks the code)
│   └── UnexpectedResponse     a 2xx answer that is not the documented body (BAD_RESPONSE)
└── TransportError             no answer: CONNECTION_FAILED (refused, reset, DNS, TLS)
    └── Timeout                no answer within the client's timeout (TIMEOUT)

An answer whose body is not the API's JSON (a proxy's HTML page) keeps its class by status, with the
code ``HTTP_<status>``: a load balancer's 503 is still a ``ServiceUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One item of a 422 answer: where (``loc``, e.g. ``["body", "recipient"]``), what, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class OtpDispatcherError(Exception):
    """Anything the client raises."""

    def __init__(self, message: str, code: str, status: int | None = None) -> None:
        self.message = message
        self.code = code
        self.status = status
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")


class ApiError(OtpDispatcherError):
    """The API answered with an error status; ``retry_after``: the seconds its ``Retry-After`` header asked to wait
    (a rate limit, a resend too soon; None when it sent none)."""

    status: int

    def __init__(self, message: str, code: str, status: int, *, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, code, status)


class ResendRefused(ApiError):
    """The resend is not allowed now (too soon: ``retry_after`` says when; too many, expired or already verified)."""


class Unauthorized(ApiError):
    """The token is missing or not one of the API's tokens."""


class NumberNotAllowed(ApiError):
    """The recipient's country is not on the dispatcher's allowlist, or the number is premium-rate."""


class UnknownOtp(ApiError):
    """No OTP has this id, or its record is gone."""


class Conflict(ApiError):
    """An OTP is already open for the number (``otp_id``), or the same request is in progress."""

    def __init__(self, message: str, code: str, status: int, otp_id: str | None = None) -> None:
        self.otp_id = otp_id
        super().__init__(message, code, status)


class InvalidRequest(ApiError):
    """The request does not validate; ``problems`` holds D7's ``{"loc", "msg", "type"}`` items."""

    def __init__(self, message: str, code: str, status: int, problems: tuple[Problem, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message, code, status)


class IdempotencyKeyReused(InvalidRequest):
    """The Idempotency-Key was used before with another body."""


class RateLimited(ApiError):
    """A send limit was reached; ``retry_after`` seconds until it lifts (None if the answer did not say)."""


class ServiceUnavailable(ApiError):
    """The dispatcher (its Redis or broker), or the vendor that must check the code, did not answer in time."""


class UnexpectedResponse(ApiError):
    """A successful answer whose body is not what the API documents."""


class TransportError(OtpDispatcherError):
    """The API could not be reached, or the connection failed before a whole answer came."""


class Timeout(TransportError):
    """No answer within the client's timeout (the request may still have been carried out)."""
