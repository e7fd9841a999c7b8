"""Octopush OTP: Octopush generates the code, sends it, and checks it (verification is forwarded here).

Answers are mapped in ``_failure`` only. Octopush reports errors as a numeric ``code`` in the body:
on generate, 401/403 and the credit error make the vendor unavailable, other 4xx reject the request,
429 and 5xx are temporary. On validate, 199 (wrong code), 196 (too many wrong codes), 197 (expired)
and 198 (unknown token) all mean "not approved".
"""

from __future__ import annotations

from typing import Any, ClassVar

from vendors.base import ALL_TYPES, Capabilities, Provider
from vendors.errors import ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.spec import OtpSpec

GENERATE_PATH = "/service/otp/generate"
VALIDATE_PATH = "/service/otp/validate"
CODE_PLACEHOLDER = "{code}"
DEFAULT_TEXT = "Your verification code is {code}"
NOT_APPROVED = frozenset({196, 197, 198, 199})
CREDIT_CODES = frozenset({102, 103})
"""Octopush's 'not enough credit' family."""


class OctopushProvider(Provider):
    generates_codes: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        channels=frozenset({"SMS"}),  # Octopush also calls (voice_sms), a channel D7's API cannot ask for
        otp_types=ALL_TYPES,  # upper-case letters and digits
        code_lengths=range(4, 33),
        content=True,
        templates=False,  # no D7 templates: with vendor_text, DEFAULT_TEXT is sent
    )

    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        body: dict[str, Any] = {
            "phone_number": spec.recipient,
            "channel": "sms",
            "text": spec.content.replace("{}", CODE_PLACEHOLDER) if spec.content else DEFAULT_TEXT,
            "code_length": spec.code_length,
            "allow_digits": spec.otp_type in ("numeric", "alphanumeric"),
            "allow_upper_case": spec.otp_type in ("alpha", "alphanumeric"),
            "allow_lower_case": False,
            "allow_special_chars": False,
            "validity_period": expiry,
        }
        if 3 <= len(spec.originator) <= 11 and spec.originator.isalnum():
            body["sender"] = spec.originator
        status, answer = await self.call("POST", GENERATE_PATH, json=body, headers=self._headers())
        if status == 200 and isinstance(answer, dict) and answer.get("code") == 0:
            token = answer.get("otp_request_token")
            if isinstance(token, str) and token:
                return token
        raise _failure(status, answer)

    async def check(self, reference: str, code: str) -> bool:
        status, answer = await self.call(
            "PUT", VALIDATE_PATH, json={"code": code, "otp_request_token": reference}, headers=self._headers()
        )
        body_code = answer.get("code") if isinstance(answer, dict) else None
        if status == 200 and body_code == 0:
            return True
        if body_code in NOT_APPROVED:
            return False
        raise _failure(status, answer)

    def _headers(self) -> dict[str, str]:
        return {"api-login": self.settings.login, "api-key": self.settings.password.get_secret_value()}


def _failure(status: int, body: Any) -> ProviderError:
    """The one place Octopush's error answers are classified."""
    body_code = body.get("code") if isinstance(body, dict) else None
    code = f"OCTOPUSH_{body_code}" if isinstance(body_code, int) else f"HTTP_{status}"
    if status == 200:
        return TemporaryError("BAD_RESPONSE", "Octopush answered 200 without a request token")
    if status in (401, 402, 403) or body_code in CREDIT_CODES:
        return VendorUnavailable(code, f"Octopush refused the account (HTTP {status})")
    if status == 429 or status >= 500:
        return TemporaryError(code, f"Octopush answered HTTP {status}")
    return Rejected(code, f"Octopush rejected the request (HTTP {status})")
