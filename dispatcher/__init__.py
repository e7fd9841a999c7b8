"""Producer side: the HTTP API, the Python client, the OTP store and verification."""

from dispatcher.app import create_app
from dispatcher.client import OtpClient, SyncOtpClient
from dispatcher.errors import (
    DispatcherError,
    InvalidRequest,
    ResendRefused,
    ServiceUnavailable,
    Unauthorized,
    UnknownOtp,
    VendorUnavailable,
)
from dispatcher.schemas import OtpReport, OtpStatus, VerifyStatus
from dispatcher.service import CodeChecker, OtpService

__all__ = [
    "CodeChecker",
    "DispatcherError",
    "InvalidRequest",
    "OtpClient",
    "OtpReport",
    "OtpService",
    "OtpStatus",
    "ResendRefused",
    "ServiceUnavailable",
    "SyncOtpClient",
    "Unauthorized",
    "UnknownOtp",
    "VendorUnavailable",
    "VerifyStatus",
    "create_app",
]
