"""D7 Networks Verify: D7 generates the code, sends it, and checks it (verification is forwarded here).

Answers are mapped in ``_failure`` only: 401 and 402 make D7 unavailable (fail over), 400 and 422
reject the request, 429 and 5xx are temporary, and a 200 without an ``otp_id`` is temporary too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vendors.base import ALL_TYPES, Capabilities, Provider
from vendors.errors import ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.spec import OtpSpec

SEND_PATH = "/verify/v1/otp/send-otp"
RESEND_PATH = "/verify/v1/otp/resend-otp"
VERIFY_PATH = "/verify/v1/otp/verify-otp"


class D7Provider(Provider):
    generates_codes: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        channels=frozenset({"SMS", "WhatsApp"}),
        otp_types=ALL_TYPES,
        code_lengths=range(4, 13),
        content=True,
        templates=True,
    )

    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        body: dict[str, Any] = {
            "recipient": spec.recipient,
            "originator": spec.originator,
            "channel": spec.channel,
            "expiry": expiry,
            "data_coding": spec.data_coding,
            "otp_code_length": spec.code_length,
            "otp_type": spec.otp_type,
            "retry_delay": spec.resend_delay,
            "retry_count": spec.resend_limit,
        }
        if spec.template_id is not None:
            body["template_id"] = spec.template_id
        else:
            body["content"] = spec.content
        return await self._otp_id(SEND_PATH, body)

    async def resend(self, reference: str, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        """D7 resends its own code; when D7 refuses (its own resend rules), a new OTP is sent instead."""
        try:
            return await self._otp_id(RESEND_PATH, {"otp_id": reference})
        except Rejected:
            return await self.send(spec, otp_id=otp_id, expiry=expiry)

    async def check(self, reference: str, code: str) -> bool:
        status, body = await self.call(
            "POST", VERIFY_PATH, json={"otp_id": reference, "otp_code": code}, headers=self._headers()
        )
        if status == 200 and isinstance(body, dict):
            # ALREADY_VERIFIED means the code was right; settling in the store lets exactly one caller win.
            return body.get("status") in ("APPROVED", "ALREADY_VERIFIED")
        failure = _failure(status, body)
        if isinstance(failure, Rejected):  # INVALID_OTP_CODE: unknown or expired at D7
            return False
        raise failure

    async def _otp_id(self, path: str, body: dict[str, Any]) -> str:
        status, answer = await self.call("POST", path, json=body, headers=self._headers())
        if status == 200 and isinstance(answer, dict) and isinstance(answer.get("otp_id"), str):
            return str(answer["otp_id"])
        raise _failure(status, answer)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_token.get_secret_value()}"}


def _failure(status: int, body: Any) -> ProviderError:
    """The one place D7's error answers are classified."""
    code = _detail_code(body) or f"HTTP_{status}"
    if status == 200:
        return TemporaryError("BAD_RESPONSE", "D7 answered 200 without an otp_id")
    if status in (401, 402, 403):
        return VendorUnavailable(code, f"D7 refused the account (HTTP {status})")
    if status in (400, 404, 422):
        return Rejected(code, f"D7 rejected the request (HTTP {status})")
    return TemporaryError(code, f"D7 answered HTTP {status}")


def _detail_code(body: Any) -> str | None:
    """D7 puts its error code in ``detail.code`` or ``detail[0].code``."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = detail[0]
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        return str(detail["code"])
    return None
