"""The interface every vendor adapter implements."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import aiohttp

from config import ProviderSettings
from vendors.errors import OutcomeUnknown, TemporaryError
from vendors.spec import OtpSpec


class Provider(ABC):
    """One vendor. Adapters build its requests and map every answer in one place, into ``errors``."""

    generates_codes: ClassVar[bool]
    """True when the vendor makes and checks the code itself (verification is forwarded to it)."""

    def __init__(self, settings: ProviderSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.name = settings.name
        self.session = session
        self.base_url = str(settings.base_url).rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout)

    @abstractmethod
    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        """Deliver a new code of the OTP ``otp_id``, valid for ``expiry`` more seconds; return the vendor's
        reference for it. ``code`` is given only to providers that do not generate codes themselves."""

    async def resend(self, reference: str, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        """Deliver again an OTP this vendor delivered before; return the (possibly new) reference."""
        return await self.send(spec, otp_id=otp_id, expiry=expiry, code=code)

    async def check(self, reference: str, code: str) -> bool:
        """Ask the vendor whether ``code`` is right; only for vendors that generate codes."""
        raise NotImplementedError(f"{self.name} does not check codes")

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """One HTTP request to the vendor: its status and JSON body (None when the body is not JSON).

        Transport failures are mapped here, once for every adapter: a failure before the request left
        is temporary; a timeout or a dropped connection after it left is ``OutcomeUnknown``.
        """
        try:
            async with self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TemporaryError("CONNECT_FAILED", f"{self.name} could not be reached") from exc
        except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise OutcomeUnknown("NO_ANSWER", f"{self.name} did not answer in {self.settings.timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise TemporaryError("TRANSPORT_ERROR", f"{self.name}: {type(exc).__name__}") from exc
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        return status, body
