"""Forwards verification to the vendor that generated a code, for the API and the Python client."""

from __future__ import annotations

import aiohttp

from config import Settings
from dispatcher.errors import VendorUnavailable
from workers.providers import Provider, ProviderError, build_providers


class ProviderChecker:
    """Implements ``dispatcher.service.CodeChecker`` with the vendor adapters, on the caller's event loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._providers: dict[str, Provider] = {}

    async def check(self, vendor: str, reference: str, code: str) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._providers = build_providers(self._settings, self._session)
        provider = self._providers.get(vendor)
        if provider is None:
            raise VendorUnavailable(f"The vendor that sent this code ({vendor}) is no longer configured.")
        try:
            return await provider.check(reference, code)
        except ProviderError as exc:
            raise VendorUnavailable(f"The vendor that sent this code could not check it ({exc.code}).") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
