"""The in-process client: the API's four operations called directly, for Python code that runs next to Redis.

    async with InProcessClient(load_settings()) as client:
        sent = await client.send("+33612345678", "Your code is {}")
        status = await client.verify(sent.otp_id, "123456")

It needs what the API process needs: ``OTP_REDIS_URL`` (the dispatcher's Redis, records and broker),
``OTP_SECRET_KEY`` (the same key as the API's: it keys code hashes and seals numbers) and, to verify
codes that a vendor generated (D7, Octopush, Message Central), that vendor's provider settings. Other
services should use the HTTP client (the ``otp-dispatcher-client`` distribution), which needs only a
URL and a token. ``SyncInProcessClient`` wraps it for code without an event loop. Bad input raises
``InvalidRequest`` with D7's error items; Redis or broker outages raise ``ServiceUnavailable``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ValidationError

from config import Settings
from dispatcher.errors import InvalidRequest
from dispatcher.schemas import (
    OtpReport,
    ResendOtpRequest,
    ResendOtpResponse,
    SendOtpRequest,
    SendOtpResponse,
    VerifyOtpRequest,
    VerifyStatus,
)
from dispatcher.service import OtpService

_Body = TypeVar("_Body", bound=BaseModel)


class InProcessClient:
    """Async client over the dispatcher's own service (Redis pool, job publisher, vendor session)."""

    def __init__(self, settings: Settings) -> None:
        self._service = OtpService.connect(settings)

    async def send(self, recipient: str, content: str | None = None, **options: Any) -> SendOtpResponse:
        """Accept an OTP for ``recipient`` and queue its delivery; ``options`` are D7's send-otp fields."""
        body = _validate(SendOtpRequest, {"recipient": recipient, "content": content, **options})
        return await self._service.send(body)

    async def resend(self, otp_id: str) -> ResendOtpResponse:
        return await self._service.resend(_validate(ResendOtpRequest, {"otp_id": otp_id}))

    async def verify(self, otp_id: str, otp_code: str) -> VerifyStatus:
        answer = await self._service.verify(_validate(VerifyOtpRequest, {"otp_id": otp_id, "otp_code": otp_code}))
        return answer.status

    async def report(self, otp_id: str) -> OtpReport:
        return await self._service.report(_validate(ResendOtpRequest, {"otp_id": otp_id}).otp_id)

    async def close(self) -> None:
        await self._service.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SyncInProcessClient:
    """Blocking wrapper around ``InProcessClient``, running it on a private event loop."""

    def __init__(self, settings: Settings) -> None:
        self._runner = asyncio.Runner()
        self._client = self._runner.run(_build(settings))

    def send(self, recipient: str, content: str | None = None, **options: Any) -> SendOtpResponse:
        return self._runner.run(self._client.send(recipient, content, **options))

    def resend(self, otp_id: str) -> ResendOtpResponse:
        return self._runner.run(self._client.resend(otp_id))

    def verify(self, otp_id: str, otp_code: str) -> VerifyStatus:
        return self._runner.run(self._client.verify(otp_id, otp_code))

    def report(self, otp_id: str) -> OtpReport:
        return self._runner.run(self._client.report(otp_id))

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _build(settings: Settings) -> InProcessClient:
    return InProcessClient(settings)


def _validate(model: type[_Body], data: dict[str, Any]) -> _Body:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc) from None
