"""D7 Networks Verify: D7 generates the code, sends it, and checks it (verification is forwarded here).

Answers are mapped in ``_failure`` only: 401 and 402 make D7 unavailable (fail over), 400 and 422
reject the request, 429 and 5xx are temporary, and a 200 without an ``otp_id`` is temporary too.

Receipts: send-otp takes ``success_url`` and ``failure_url``, "the postback url to which the successful
(failed) OTP delivery response is to be sent" (d7networks.com/docs/Verify/Send-OTP). With a callback
address, each send gives D7 our route for this vendor, with ``?event=success`` or ``?event=failure``: which
URL D7 calls is the outcome. D7 does not document the body of that call; its Messages API documents its
delivery report (d7networks.com/docs/Messages/Receive_SMS_Postback: a POST "sent as formData" with
``request_id``, ``msg_id``, ``recipient``, ``originator``, ``status``: ``delivered``, ``sent``, ``scheduled``,
``undelivered`` or ``un_delivered``), so we read that, as form fields or JSON: ``request_id`` (else
``otp_id``) is the ``otp_id`` send-otp answered, ``sent`` and ``scheduled`` say nothing about the handset,
and a failure's ``status`` is its reason. D7 keeps one ``otp_id`` across its resends, so a receipt names
the latest attempt at D7 for that OTP. D7 also documents ``GET /verify/v1/report/{otp_id}`` (Get
Status), a fallback to poll; this release relies on the callbacks. The customer's own ``success_url`` and
``failure_url`` are never given to D7: the dispatcher calls them itself (postbacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

from vendors.base import ALL_TYPES, Capabilities, Provider
from vendors.errors import ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.receipts import MAX_REFERENCE, BadReceipt, Receipt, ReceiptOutcome, clip
from vendors.spec import OtpSpec

SEND_PATH = "/verify/v1/otp/send-otp"
RESEND_PATH = "/verify/v1/otp/resend-otp"
VERIFY_PATH = "/verify/v1/otp/verify-otp"
STATUS_PATH = "/report/v1/message-log/{}"
SUCCESS_EVENT = "success"
FAILURE_EVENT = "failure"
REFERENCE_FIELDS = ("request_id", "otp_id")
"""Where D7's postback names the OTP: ``request_id`` in its delivery reports, ``otp_id`` in Verify's answers."""
REASON_FIELDS = ("status", "reason", "message")
DELIVERED_STATUS = "delivered"
INTERMEDIATE = frozenset({"sent", "scheduled", "accepted"})
"""Delivery-report statuses that are not the handset's outcome (no evidence: the receipt stays NONE)."""


class D7Provider(Provider):
    generates_codes: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        channels=frozenset({"SMS", "WhatsApp"}),
        otp_types=ALL_TYPES,
        code_lengths=range(4, 13),
        content=True,
        templates=True,
    )
    receipts: ClassVar[bool] = True
    polls: ClassVar[bool] = True

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
        if self.callback_url:
            body["success_url"] = f"{self.callback_url}?event={SUCCESS_EVENT}"
            body["failure_url"] = f"{self.callback_url}?event={FAILURE_EVENT}"
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

    async def poll(self, reference: str, within: float) -> Receipt | None:
        """The delivery status of the latest message sent for the OTP ``reference`` (D7's message log)."""
        path = STATUS_PATH.format(quote(reference, safe=""))
        status, body = await self.call("GET", path, within=within, headers=self._headers())
        if status == 404:
            return None
        if status != 200:
            raise _failure(status, body)
        messages = body.get("messages") if isinstance(body, dict) else None
        latest = messages[-1] if isinstance(messages, list) and messages else None
        if not isinstance(latest, dict) or not isinstance(latest.get("status"), str):
            raise TemporaryError("BAD_RESPONSE", "D7's message log lists no message with a status")
        return _receipt(reference, clip(latest["status"]).lower(), delivered=None)

    @classmethod
    def parse_receipt(cls, body: bytes, content_type: str, query: Mapping[str, str]) -> Receipt:
        """D7's call to the ``success_url`` or ``failure_url`` we gave it (the event is in our URL's query), as
        form fields or JSON; the ``recipient`` in it is dropped."""
        event = query.get("event")
        if event not in (SUCCESS_EVENT, FAILURE_EVENT):
            raise BadReceipt("not one of the URLs we give D7 (no event)")
        data: Any
        try:
            if content_type == "application/x-www-form-urlencoded":
                data = dict(parse_qsl(body.decode()))
            else:
                data = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadReceipt("neither form fields nor JSON") from None
        if not isinstance(data, dict):
            raise BadReceipt("not an object")
        reference = next((data[field] for field in REFERENCE_FIELDS if isinstance(data.get(field), str)), "")
        if not reference or len(reference) > MAX_REFERENCE:
            raise BadReceipt("no otp_id or request_id")
        status = clip(data.get("status") or "").lower()
        if event == SUCCESS_EVENT or status:
            return _receipt(reference, status or "success_url", delivered=event == SUCCESS_EVENT)
        reason = next((clip(data[field]) for field in REASON_FIELDS if data.get(field)), "failure_url")
        return Receipt(reference, ReceiptOutcome.UNDELIVERED, "failure_url", reason)

    async def _otp_id(self, path: str, body: dict[str, Any]) -> str:
        status, answer = await self.call("POST", path, json=body, headers=self._headers())
        if status == 200 and isinstance(answer, dict) and isinstance(answer.get("otp_id"), str):
            return str(answer["otp_id"])
        raise _failure(status, answer)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_token.get_secret_value()}"}


def _receipt(reference: str, status: str, *, delivered: bool | None) -> Receipt:
    """What D7's word for a message says (``delivered``: which postback URL D7 called, None when polled):
    nothing for an intermediate status, delivered for ``delivered`` (or the success URL), else a failure."""
    if status in INTERMEDIATE:
        return Receipt(reference, ReceiptOutcome.NONE, status)
    if delivered or (delivered is None and status == DELIVERED_STATUS):
        return Receipt(reference, ReceiptOutcome.DELIVERED, status)
    return Receipt(reference, ReceiptOutcome.UNDELIVERED, status, status)


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
