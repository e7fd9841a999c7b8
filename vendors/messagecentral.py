"""Message Central VerifyNow: it generates the code, sends it, and checks it (verification is forwarded here).

Every call carries an ``authToken`` obtained from the token endpoint with the account's customerId
and base64 password; the token is cached and fetched again once when a call answers 401 or 403.
Errors are read from the body's ``responseCode``, not the HTTP status, and mapped in ``_failure``
only: 702 (wrong code), 703 (already verified), 705 (expired) and 800 (limit reached) mean "not
approved" on validation; 501 (bad customer) and credit errors make the vendor unavailable; 511
(country not served) too, so another vendor takes the number; 506 (a request already pending for
this number) is temporary, and so is a success we cannot read (no ``responseCode``: a garbled body);
other 4xx reject the request.

Receipts: Message Central's VerifyNow documents neither a delivery callback nor a delivery-status endpoint
(messagecentral.com, Verify Now API: token, send, validateOtp only), so its attempts are judged by the
deadline alone: their receipt stays NONE.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, ClassVar

from vendors.base import Capabilities, Provider
from vendors.errors import ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.phone import split_number
from vendors.spec import OtpSpec

TOKEN_PATH = "/auth/v1/authentication/token"  # noqa: S105 (a path, not a secret)
SEND_PATH = "/verification/v2/verification/send"
VALIDATE_PATH = "/verification/v2/verification/validateOtp"
MAX_CODE_LENGTH = 8
MIN_CODE_LENGTH = 4
SUCCESS = 200
NOT_APPROVED = frozenset({702, 703, 705, 800, 505})
UNAVAILABLE = frozenset({501, 511, 402})
TEMPORARY = frozenset({506, 429})


class MessageCentralProvider(Provider):
    generates_codes: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        channels=frozenset({"SMS"}),
        otp_types=frozenset({"numeric"}),
        code_lengths=range(MIN_CODE_LENGTH, MAX_CODE_LENGTH + 1),
        content=False,  # VerifyNow sends its own text: only with vendor_text
        templates=False,
    )

    _token: str | None = None
    _token_lock: asyncio.Lock | None = None

    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        country, national = split_number(spec.recipient)
        params = {
            "countryCode": country,
            "customerId": self.settings.login,
            "flowType": "SMS",
            "mobileNumber": national,
            "otpLength": str(spec.code_length),  # within capabilities: never clamped
        }
        status, answer = await self._authorised("POST", SEND_PATH, params)
        data = answer.get("data") if isinstance(answer, dict) else None
        if _response_code(answer) == SUCCESS and isinstance(data, dict) and data.get("verificationId"):
            return str(data["verificationId"])
        raise _failure(status, answer)

    async def check(self, reference: str, code: str) -> bool:
        params = {"customerId": self.settings.login, "code": code, "verificationId": reference}
        status, answer = await self._authorised("GET", VALIDATE_PATH, params)
        response_code = _response_code(answer)
        data = answer.get("data") if isinstance(answer, dict) else None
        if response_code == SUCCESS and isinstance(data, dict):
            return data.get("verificationStatus") == "VERIFICATION_COMPLETED"
        if response_code in NOT_APPROVED:
            return False
        raise _failure(status, answer)

    async def _authorised(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """The call with a cached token, fetching a new token once if the vendor says it is stale."""
        for fresh in (False, True):
            token = await self._auth_token(refresh=fresh)
            status, answer = await self.call(method, path, params=params, headers={"authToken": token})
            if status not in (401, 403):
                return status, answer
        return status, answer

    async def _auth_token(self, refresh: bool) -> str:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            if self._token is None or refresh:
                self._token = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> str:
        params = {
            "customerId": self.settings.login,
            "key": base64.b64encode(self.settings.password.get_secret_value().encode()).decode(),
            "scope": "NEW",
            "country": self.settings.account_country,
        }
        if self.settings.email:
            params["email"] = self.settings.email
        status, answer = await self.call("GET", TOKEN_PATH, params=params)
        token = answer.get("token") if isinstance(answer, dict) else None
        if status == 200 and isinstance(token, str) and token:
            return token
        if status in (401, 403) or _response_code(answer) in UNAVAILABLE:
            raise VendorUnavailable(f"MC_{_response_code(answer) or status}", "Message Central refused the account")
        raise _failure(status, answer)


def _response_code(body: Any) -> int | None:
    code = body.get("responseCode") if isinstance(body, dict) else None
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _failure(status: int, body: Any) -> ProviderError:
    """The one place Message Central's error answers are classified."""
    response_code = _response_code(body)
    if response_code is None and status < 300:
        return TemporaryError("BAD_RESPONSE", f"Message Central answered HTTP {status} without a responseCode")
    code = f"MC_{response_code}" if response_code is not None else f"HTTP_{status}"
    if response_code in UNAVAILABLE or status in (401, 402, 403):
        return VendorUnavailable(code, f"Message Central cannot serve this request ({code})")
    if response_code in TEMPORARY or status == 429 or status >= 500 or response_code == SUCCESS:
        return TemporaryError(code, f"Message Central answered {code}")
    return Rejected(code, f"Message Central rejected the request ({code})")
