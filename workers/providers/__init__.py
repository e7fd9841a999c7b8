"""Vendor adapters, one module each, behind the ``Provider`` interface."""

from __future__ import annotations

import aiohttp

from config import ProviderKind, Settings
from workers.providers.base import OutgoingOtp, Provider
from workers.providers.console import ConsoleProvider
from workers.providers.d7 import D7Provider
from workers.providers.errors import OutcomeUnknown, ProviderError, Rejected, TemporaryError, VendorUnavailable
from workers.providers.messagecentral import MessageCentralProvider
from workers.providers.octopush import OctopushProvider

__all__ = [
    "PROVIDER_CLASSES",
    "ConsoleProvider",
    "D7Provider",
    "MessageCentralProvider",
    "OctopushProvider",
    "OutcomeUnknown",
    "OutgoingOtp",
    "Provider",
    "ProviderError",
    "Rejected",
    "TemporaryError",
    "VendorUnavailable",
    "build_providers",
]

PROVIDER_CLASSES: dict[ProviderKind, type[Provider]] = {
    "console": ConsoleProvider,
    "d7": D7Provider,
    "messagecentral": MessageCentralProvider,
    "octopush": OctopushProvider,
}


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """Every configured provider by name, disabled ones too: they may still have to check codes they sent."""
    return {provider.name: PROVIDER_CLASSES[provider.kind](provider, session) for provider in settings.providers}
