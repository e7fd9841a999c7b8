"""Sandbox D7 Networks Verify: send-otp, resend-otp, verify-otp and report, with D7's auth and bodies.

D7 generates the code (``secrets``), puts the message in the inbox and checks codes itself: five wrong
codes lock an OTP. Faults answer with D7's own error bodies (402 is INSUFFICIENT_CREDIT).

Delivery receipts (``sandbox/RECEIPTS.md``): each message sent (send-otp, and each resend) gets one, POSTed
to the send-otp's ``success_url`` when delivered or its ``failure_url`` when not (none without that URL).
D7's Verify documents those two URLs ("the postback url to which the successful / failed OTP delivery
response is sent") but not the body; the body is the one D7 documents for its Messages API's delivery
reports ("Receiving DLR": a form-encoded POST of ``request_id``, ``msg_id``, ``recipient``, ``originator``,
``status``). Assumed: ``request_id`` is the ``otp_id`` (what the send answered, as ``request_id`` is in the
Messages API), ``msg_id`` a new id for each message sent, ``status`` ``delivered`` or ``undelivered`` (one
version of that page spells it ``un_delivered``: a fault can ask for either).

Delivery status (``GET /report/v1/message-log/{request_id}``, D7's Messages "Get Status"): each message sent for
an OTP is listed with its ``status``: ``sent`` ("sent to telecom and is awaiting acknowledgement") until the
handset's outcome is known, when its receipt goes out: ``delivered``, or ``un_delivered`` (the message log's
spelling; a fault's ``undelivered_status`` replaces it). A message silently dropped, or one whose delivery report
never came (``no_receipt_rate``), stays ``sent``: D7 has heard nothing either. A lost postback (our callback
unreachable) does not change it: D7 knows. Assumed, as for the postbacks: the Verify ``otp_id`` is the message
log's ``request_id``. D7 Verify's own "Get Status" (``/verify/v1/report/{otp_id}``) documents only the
verification status (``OPEN``), nothing of delivery.
"""

from __future__ import annotations

import hmac
import json
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from sandbox.delivery import NETWORK, Receipt, Reporter
from sandbox.faults import with_faults
from sandbox.state import Message, Url

MAX_WRONG_CODES = 5
SENT_STATUS = "sent"
LOG_FAILURE_STATUS = "un_delivered"
"""A failed message's ``status`` in the message log (its documented spelling), unless a fault names another."""
FAILURE_STATUSES = ("undelivered", "un_delivered")
"""The ``status`` of an undelivered receipt: the first unless a fault asks for the other."""
TEMPLATE_TEXT = "Your code is {}"
UNAUTHORIZED = {
    "code": "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED",
    "message": "It looks like your requests were failed due to a missing or invalid 'Access Token'. "
    "Sign up at https://app.d7networks.com and create an authentication token in the developer section.",
}
NO_CREDIT = [
    {
        "code": "INSUFFICIENT_CREDIT",
        "message": "It looks like your requests failed due to insufficient credit on our account.",
    }
]
NOT_FOUND = {"code": "MESSAGE_LOG_NOT_EXISTS", "message": "No OTP request exists with this otp_id."}
INVALID_CODE = {"code": "INVALID_OTP_CODE", "message": "Invalid OTP code or OTP code expired"}

TOKEN = web.AppKey("d7_token", str)
OTPS = web.AppKey("d7_otps", dict)
routes = web.RouteTableDef()


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class SendBody(_Body):
    recipient: Annotated[str, StringConstraints(pattern=r"^\+?[1-9][0-9]{7,14}$")]
    originator: str = Field("D7VERIFY", min_length=1, max_length=15)
    content: str | None = Field(None, max_length=1000)
    template_id: int | None = None
    channel: Literal["SMS", "WhatsApp"] = "SMS"
    expiry: int = Field(600, ge=1)
    data_coding: Literal["text", "unicode", "auto"] = "text"
    retry_delay: int = Field(60, ge=0)
    retry_count: int = Field(5, ge=0)
    otp_code_length: int = Field(6, ge=4, le=12)
    otp_type: Literal["numeric", "alpha", "alphanumeric"] = "numeric"
    success_url: Url | None = None
    failure_url: Url | None = None

    @model_validator(mode="after")
    def _content(self) -> SendBody:
        if self.template_id is None and (self.content is None or "{}" not in self.content):
            raise ValueError("content with {} is required unless template_id is given")
        return self


class IdBody(_Body):
    otp_id: str


class VerifyBody(IdBody):
    otp_code: str


@dataclass
class SandboxOtp:
    otp_id: str
    recipient: str
    text: str
    code: str
    created_at: float
    expires_at: float
    retry_delay: int
    retry_count: int
    last_sent_at: float
    originator: str
    success_url: str | None
    failure_url: str | None
    channel: str = "SMS"
    resend_count: int = 0
    wrong: int = 0
    verified: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Each message sent (send, then each resend), as the message log lists it."""

    def status(self, now: float) -> str:
        if self.verified:
            return "VERIFIED"
        return "EXPIRED" if now >= self.expires_at else "OPEN"


ALPHABETS = {
    "numeric": string.digits,
    "alpha": string.ascii_uppercase,
    "alphanumeric": string.digits + string.ascii_uppercase,
}


def _generate(length: int, otp_type: str) -> str:
    """A code as D7 makes one: ``length`` random characters of the type's alphabet."""
    return "".join(secrets.choice(ALPHABETS[otp_type]) for _ in range(length))


def _reporter(otp: SandboxOtp) -> Reporter:
    """The receipt of one message sent for ``otp``: D7's delivery report, to its success or failure URL; the
    message is listed in the message log as ``sent`` until then."""
    msg_id = str(uuid.uuid4())
    logged = {"msg_id": msg_id, "recipient": otp.recipient, "status": SENT_STATUS, "number_of_sms": 1}
    otp.messages.append(logged)

    def report(delivered: bool, failure: str | None) -> Receipt | None:
        logged["status"] = "delivered" if delivered else failure or LOG_FAILURE_STATUS
        url = otp.success_url if delivered else otp.failure_url
        if url is None:
            return None
        status = "delivered" if delivered else failure or FAILURE_STATUSES[0]
        fields = {
            "request_id": otp.otp_id,
            "msg_id": msg_id,
            "recipient": otp.recipient,
            "originator": otp.originator,
            "status": status,
        }
        return Receipt("d7", otp.otp_id, otp.recipient, status, url, fields, "form")

    return report


def error_response(status: int) -> web.Response:
    if status == 401:
        return web.json_response({"detail": UNAUTHORIZED}, status=401)
    if status == 402:
        return web.json_response({"detail": NO_CREDIT}, status=402)
    if status == 422:
        return web.json_response({"detail": [{"loc": ["body"], "msg": "injected", "type": "value_error"}]}, status=422)
    return web.json_response({"detail": {"code": f"HTTP_{status}", "message": "Injected failure"}}, status=status)


@web.middleware
async def d7_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(("/verify/", "/report/")):
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), request.app[TOKEN].encode()):
        return error_response(401)
    return await handler(request)


async def _parse(request: web.Request, model: type[_Body]) -> Any:
    try:
        return model.model_validate(json.loads(await request.read()))
    except ValueError as exc:
        errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
        detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors] or [
            {"loc": ["body"], "msg": "Invalid JSON", "type": "json_invalid"}
        ]
        raise web.HTTPUnprocessableEntity(
            text=json.dumps({"detail": detail}), content_type="application/json"
        ) from None


def _otp(request: web.Request, otp_id: str) -> SandboxOtp | None:
    otps: dict[str, SandboxOtp] = request.app[OTPS]
    return otps.get(otp_id)


@routes.post("/verify/v1/otp/send-otp")
@with_faults("d7", "send-otp", error_response)
async def send_otp(request: web.Request) -> web.Response:
    body: SendBody = await _parse(request, SendBody)
    now = time.time()
    code = _generate(body.otp_code_length, body.otp_type)
    otp = SandboxOtp(
        otp_id=str(uuid.uuid4()),
        recipient=body.recipient if body.recipient.startswith("+") else "+" + body.recipient,
        text=(body.content or TEMPLATE_TEXT).replace("{}", code),
        code=code,
        created_at=now,
        expires_at=now + body.expiry,
        retry_delay=body.retry_delay,
        retry_count=body.retry_count,
        last_sent_at=now,
        originator=body.originator,
        success_url=body.success_url,
        failure_url=body.failure_url,
        channel=body.channel,
    )
    request.app[OTPS][otp.otp_id] = otp
    request.app[NETWORK].carry(Message("d7", otp.recipient, otp.text, code, otp.otp_id, otp.channel), _reporter(otp))
    return web.json_response({"otp_id": otp.otp_id, "status": "OPEN", "expiry": body.expiry})


@routes.post("/verify/v1/otp/resend-otp")
@with_faults("d7", "resend-otp", error_response)
async def resend_otp(request: web.Request) -> web.Response:
    body: IdBody = await _parse(request, IdBody)
    otp, now = _otp(request, body.otp_id), time.time()
    if otp is None:
        return web.json_response({"detail": NOT_FOUND}, status=404)
    refusal = None
    if now >= otp.expires_at:
        refusal = ("OTP_EXPIRED", "The OTP has expired.")
    elif otp.resend_count >= otp.retry_count:
        refusal = ("RETRY_COUNT_EXCEEDED", "The maximum number of resends was reached.")
    elif now - otp.last_sent_at < otp.retry_delay:
        refusal = ("RETRY_DELAY_NOT_REACHED", "Wait retry_delay seconds between resends.")
    if refusal:
        return web.json_response({"detail": {"code": refusal[0], "message": refusal[1]}}, status=400)
    otp.resend_count, otp.last_sent_at = otp.resend_count + 1, now
    request.app[NETWORK].carry(
        Message("d7", otp.recipient, otp.text, otp.code, otp.otp_id, otp.channel), _reporter(otp)
    )
    expiry = int(otp.expires_at - now)
    return web.json_response(
        {"otp_id": otp.otp_id, "status": "OPEN", "expiry": expiry, "resend_count": otp.resend_count}
    )


@routes.post("/verify/v1/otp/verify-otp")
@routes.post("/verify/v1/verify-otp")
@with_faults("d7", "verify-otp", error_response)
async def verify_otp(request: web.Request) -> web.Response:
    body: VerifyBody = await _parse(request, VerifyBody)
    otp, now = _otp(request, body.otp_id), time.time()
    if otp is None:
        return web.json_response({"detail": INVALID_CODE}, status=400)
    if otp.verified:
        status = "ALREADY_VERIFIED"
    elif now >= otp.expires_at:
        status = "EXPIRED"
    elif otp.wrong >= MAX_WRONG_CODES:
        status = "FAILED"
    elif hmac.compare_digest(body.otp_code.strip().upper().encode(), otp.code.encode()):
        otp.verified, status = True, "APPROVED"
    else:
        otp.wrong, status = otp.wrong + 1, "FAILED"
    return web.json_response({"status": status})


@routes.get("/verify/v1/report/{otp_id}")
@with_faults("d7", "report", error_response)
async def report(request: web.Request) -> web.Response:
    otp, now = _otp(request, request.match_info["otp_id"]), time.time()
    if otp is None:
        return web.json_response({"detail": NOT_FOUND}, status=404)
    return web.json_response(
        {
            "otp_id": otp.otp_id,
            "status": otp.status(now),
            "recipient": otp.recipient,
            "expiry": max(0, int(otp.expires_at - now)),
            "resend_count": otp.resend_count,
            "created_at": otp.created_at,
        }
    )


@routes.get("/report/v1/message-log/{request_id}")
@with_faults("d7", "message-log", error_response)
async def message_log(request: web.Request) -> web.Response:
    """D7's delivery status of the messages sent for one OTP (its ``otp_id`` as the ``request_id``)."""
    otp = _otp(request, request.match_info["request_id"])
    if otp is None:
        return web.json_response({"detail": NOT_FOUND}, status=404)
    return web.json_response(
        {
            "request_id": otp.otp_id,
            "total_recipients": 1,
            "channel": otp.channel.lower(),
            "messages": [dict(message) for message in otp.messages],
        }
    )


def setup(app: web.Application, token: str) -> None:
    app[TOKEN] = token
    app[OTPS] = {}
    app.add_routes(routes)
