"""``AsyncOtpClient``: the API's calls for asyncio code, over aiohttp.

aiohttp is the client's one dependency: it is what the dispatcher itself speaks HTTP with, it pools
and reuses connections, and it is typed. Pass your own ``session`` to share its connection pool (the
client then leaves it open); otherwise the client opens one on its first call and closes it on
``close()`` or at the end of ``async with``. Proxy variables (``HTTP_PROXY``...) are ignored unless
the session you pass trusts them.
"""

from __future__ import annotations

from typing import Self, TypeVar, Unpack

import aiohttp

from otp_dispatcher_client import protocol
from otp_dispatcher_client.errors import Timeout, TransportError
from otp_dispatcher_client.models import OtpReport, RouteStatsReport, SendOptions, SentOtp, StatsWindow, VerifyStatus

_T = TypeVar("_T")


class AsyncOtpClient:
    """A client of the dispatcher's API at ``base_url`` (e.g. ``https://otp.internal``), with one of its tokens.

    ``timeout`` bounds each call, in seconds, connection included.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = protocol.DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = protocol.headers(token)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    async def send(
        self,
        recipient: str,
        content: str | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SendOptions],
    ) -> SentOtp:
        """Ask for an OTP to ``recipient`` (E.164); ``content`` has ``{}`` where the code goes.

        The same ``idempotency_key`` and fields within 24 hours answer the first answer again, and send nothing.
        """
        return await self._call(protocol.send(recipient, content, options, idempotency_key))

    async def resend(self, otp_id: str) -> SentOtp:
        """Send the OTP again (D7's ``retry_delay`` and ``retry_count`` apply, else ``ResendRefused``)."""
        return await self._call(protocol.resend(otp_id))

    async def verify(self, otp_id: str, code: str) -> VerifyStatus:
        """Check a code: ``APPROVED`` once, then ``ALREADY_VERIFIED``; ``FAILED`` for a wrong code or unknown id."""
        return await self._call(protocol.verify(otp_id, code))

    async def report(self, otp_id: str) -> OtpReport:
        """The OTP's status and every delivery attempt (``UnknownOtp`` once its record is gone)."""
        return await self._call(protocol.report(otp_id))

    async def route_stats(self, window: StatsWindow = "hour") -> RouteStatsReport:
        """Each route's (vendor, channel, country) sends, receipts, conversions, expiries and median time to verify
        over the last ``hour`` or ``day``."""
        return await self._call(protocol.route_stats(window))

    async def close(self) -> None:
        """Close the session the client opened (not one that was passed in)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, call: protocol.Call[_T]) -> _T:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                call.method,
                self._base_url + call.path,
                data=call.body,
                headers={**self._headers, **call.headers},
                timeout=self._timeout,
            ) as response:
                body = await response.read()
        except TimeoutError as exc:  # aiohttp's own timeouts derive from it too
            raise Timeout(f"no answer from {self._base_url} within {self._timeout.total} s", "TIMEOUT") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"{call.method} {self._base_url}{call.path} failed: {type(exc).__name__}: {exc}", "CONNECTION_FAILED"
            ) from exc
        return call.answer(response.status, response.headers.get("Retry-After"), body)
