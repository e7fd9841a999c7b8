"""Which adapter class serves each provider kind, and the adapters of a configuration."""

from __future__ import annotations

import aiohttp

from config import ProviderKind, ProviderSettings, Settings
from vendors.base import Provider
from vendors.console import ConsoleProvider
from vendors.d7 import D7Provider
from vendors.messagecentral import MessageCentralProvider
from vendors.octopush import OctopushProvider
from vendors.receipts import callback_url
from vendors.spec import OtpSpec

PROVIDER_CLASSES: dict[ProviderKind, type[Provider]] = {
    "console": ConsoleProvider,
    "d7": D7Provider,
    "messagecentral": MessageCentralProvider,
    "octopush": OctopushProvider,
}


def build_providers(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Provider]:
    """Every configured provider by name, disabled ones too: they may still have to check codes they sent. A
    vendor that sends receipts is given its callback URL when the dispatcher has a public address."""
    providers: dict[str, Provider] = {}
    for provider in settings.providers:
        adapter = PROVIDER_CLASSES[provider.kind]
        url = None
        if adapter.receipts and settings.callback_url:
            url = callback_url(settings.callback_url, settings.secret_key.get_secret_value(), provider.name)
        providers[provider.name] = adapter(provider, session, url)
    return providers


def cannot_honour(provider: ProviderSettings, spec: OtpSpec) -> str | None:
    """Why the configured vendor ``provider`` cannot send ``spec`` exactly as asked, or None when it can
    (what ``Provider.cannot_honour`` says, without building the adapter)."""
    return PROVIDER_CLASSES[provider.kind].capabilities.cannot_honour(spec, vendor_text=provider.vendor_text)
