"""HTTP client of otp-dispatcher's API (D7 Verify's dialect): needs only the API's URL and a token.

    async with AsyncOtpClient("https://otp.internal", token) as client:
        sent = await client.send("+33612345678", "Your code is {}", expiry=300)
        status = await client.verify(sent.otp_id, code)  # VerifyStatus.APPROVED, ...

``OtpClient`` has the same methods for code without an event loop. Every failure is an
``OtpDispatcherError`` (the tree is in ``otp_dispatcher_client.errors``).
"""

from otp_dispatcher_client.async_client import AsyncOtpClient
from otp_dispatcher_client.errors import (
    ApiError,
    Conflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NumberNotAllowed,
    OtpDispatcherError,
    Problem,
    RateLimited,
    ResendRefused,
    ServiceUnavailable,
    Timeout,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    UnknownOtp,
)
from otp_dispatcher_client.models import (
    Attempt,
    AttemptOutcome,
    OtpReport,
    OtpStatus,
    ReceiptStatus,
    RouteFigures,
    RouteStatsReport,
    RoutingReason,
    SendOptions,
    SentOtp,
    StatsWindow,
    VerifyStatus,
    Workflow,
    WorkflowStep,
)
from otp_dispatcher_client.protocol import VERSION as __version__
from otp_dispatcher_client.sync_client import OtpClient

__all__ = [
    "ApiError",
    "AsyncOtpClient",
    "Attempt",
    "AttemptOutcome",
    "Conflict",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "NumberNotAllowed",
    "OtpClient",
    "OtpDispatcherError",
    "OtpReport",
    "OtpStatus",
    "Problem",
    "RateLimited",
    "ReceiptStatus",
    "ResendRefused",
    "RouteFigures",
    "RouteStatsReport",
    "RoutingReason",
    "SendOptions",
    "SentOtp",
    "ServiceUnavailable",
    "StatsWindow",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "UnknownOtp",
    "VerifyStatus",
    "Workflow",
    "WorkflowStep",
    "__version__",
]
