"""Producer side: the HTTP API, the in-process client, the OTP store and verification."""

from dispatcher.app import create_app
from dispatcher.errors import (
    DispatcherError,
    InvalidRequest,
    ResendRefused,
    ServiceUnavailable,
    Unauthorized,
    UnknownOtp,
    VendorCheckUnavailable,
)
from dispatcher.inprocess_client import InProcessClient, SyncInProcessClient
from dispatcher.schemas import OtpReport, OtpStatus, VerifyStatus
from dispatcher.service import OtpService

__all__ = [
    "DispatcherError",
    "InProcessClient",
    "InvalidRequest",
    "OtpReport",
    "OtpService",
    "OtpStatus",
    "ResendRefused",
    "ServiceUnavailable",
    "SyncInProcessClient",
    "Unauthorized",
    "UnknownOtp",
    "VendorCheckUnavailable",
    "VerifyStatus",
    "create_app",
]
