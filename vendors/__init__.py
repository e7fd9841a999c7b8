"""Vendor adapters, one module each, behind the ``Provider`` interface; phone numbers; the code checker.

Depends on ``config`` only: the producer side (verification) and the workers (delivery) both use it.
"""

from vendors import phone
from vendors.base import Capabilities, Provider
from vendors.checker import CodeChecker
from vendors.console import ConsoleProvider
from vendors.d7 import D7Provider
from vendors.errors import OutcomeUnknown, ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.messagecentral import MessageCentralProvider
from vendors.octopush import OctopushProvider
from vendors.registry import PROVIDER_CLASSES, build_providers, cannot_honour
from vendors.spec import OtpSpec

__all__ = [
    "PROVIDER_CLASSES",
    "Capabilities",
    "CodeChecker",
    "ConsoleProvider",
    "D7Provider",
    "MessageCentralProvider",
    "OctopushProvider",
    "OtpSpec",
    "OutcomeUnknown",
    "Provider",
    "ProviderError",
    "Rejected",
    "TemporaryError",
    "VendorUnavailable",
    "build_providers",
    "cannot_honour",
    "phone",
]
