"""Asks the vendor that generated a code whether it is right (D7, Octopush, Message Central check their own codes).

Used by the producer side (the API and the in-process client), on the caller's event loop, with a session
of its own opened on first use. Every failure is a ``ProviderError``; the caller decides what to answer.
"""

from __future__ import annotations

import aiohttp

from config import Settings
from vendors.base import Provider
from vendors.errors import VendorUnavailable
from vendors.registry import build_providers


class CodeChecker:
    """Checks codes with the vendor adapters of ``settings`` (disabled vendors too: they checked what they sent)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._providers: dict[str, Provider] = {}

    async def check(self, vendor: str, reference: str, code: str) -> bool:
        """True if ``vendor`` approves ``code`` for its ``reference``; a ``ProviderError`` if it cannot say."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._providers = build_providers(self._settings, self._session)
        provider = self._providers.get(vendor)
        if provider is None:
            raise VendorUnavailable("NOT_CONFIGURED", f"{vendor} is not in this process's provider settings")
        return await provider.check(reference, code)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
