"""Sandbox Octopush OTP: generate and validate, with Octopush's header auth and numeric body codes.

Body codes used here: 0 success; 101 bad api-login / api-key (HTTP 401); 100 invalid parameter;
103 not enough credit (HTTP 402, the 'no credit' fault); 194 / 195 code or token missing;
196 too many wrong codes; 197 expired; 198 unknown token; 199 wrong code (with
``remaining_number_of_attempts``). The text may carry ``{code}`` where the code goes; without it the
code is appended after a space. ``channel`` is ``sms`` or ``voice_sms`` (a call reading the text out, with
``voice_language`` and ``voice_gender``): the inbox's message carries it, so a call is told from an SMS.

Delivery receipts (``sandbox/RECEIPTS.md``): Octopush documents its "acknowledgement of receipt" callback
for its SMS API: a POST from its servers to the callback URL set once per account (in its interface's
"Callbacks" page: here ``PUT /_sandbox/callbacks/octopush``), with ``channel``, ``message_id`` (the ticket
of the original message), ``number``, ``status`` (``DELIVERED``, ``NOT_DELIVERED``, ``NOT_ALLOWED``,
``UNKNOWN_DELIVERY``, ``BAD_DESTINATION``, ``BLACKLISTED_NUMBER``, ``UNDEFINED``; ``ACK`` too, never sent
here) and ``delivery_date`` ("Y-m-d H:i:s"). Assumed: the OTP service's SMS get the same callback, its
``message_id`` being the ``ticket_number`` that generate answered; the body is JSON (its example reads it
with ``json_decode``; the table calls the fields "query fields"); the date is UTC; the channel's
``meta_data`` is left out (its content is not documented). Without an account callback URL, no receipt.
"""

from __future__ import annotations

import hmac
import json
import secrets
import string
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from sandbox.delivery import NETWORK, Receipt, Reporter
from sandbox.faults import with_faults
from sandbox.state import STATE, Message, SandboxState

PREFIX = "/v1/public/service/otp"
PLACEHOLDER = "{code}"
SPECIAL = "!#$%&*+-=?@"
FAILURE_STATUSES = (
    "NOT_DELIVERED",
    "NOT_ALLOWED",
    "UNKNOWN_DELIVERY",
    "BAD_DESTINATION",
    "BLACKLISTED_NUMBER",
    "UNDEFINED",
)
"""The ``status`` of an undelivered receipt: the first unless a fault asks for another."""
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

CREDENTIALS = web.AppKey("octopush_credentials", tuple)
OTPS = web.AppKey("octopush_otps", dict)
routes = web.RouteTableDef()


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phone_number: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
    channel: str = Field("sms", pattern=r"^(sms|voice_sms)$")
    """``voice_sms``: a call that reads the text out; the inbox's message says so (its ``channel``)."""
    voice_language: str | None = None
    """Read but not checked: Octopush reads a value it does not know in its default voice."""
    voice_gender: str | None = None
    text: str = Field("Your code is {code}", min_length=1, max_length=1224)
    sender: str | None = Field(None, pattern=r"^[a-zA-Z0-9]{3,11}$")
    code_length: int = Field(6, ge=3, le=32)
    allow_digits: bool = True
    allow_upper_case: bool = False
    allow_lower_case: bool = False
    allow_special_chars: bool = False
    validity_period: int = Field(600, ge=3, le=10_000_000)
    max_wrong_attempts: int = Field(3, ge=1)


@dataclass
class OctopushOtp:
    token: str
    code: str
    expires_at: float
    max_wrong: int
    wrong: int = 0
    used: bool = False


def _reporter(state: SandboxState, ticket: str, number: str, channel: str) -> Reporter:
    """The acknowledgement of receipt of one generated code, to the account's callback URL."""

    def report(delivered: bool, failure: str | None) -> Receipt | None:
        url = state.callbacks.get("octopush")
        if url is None:
            return None
        status = "DELIVERED" if delivered else failure or FAILURE_STATUSES[0]
        fields = {
            "channel": channel,
            "message_id": ticket,
            "number": number,
            "status": status,
            "delivery_date": datetime.now(tz=UTC).strftime(DATE_FORMAT),
        }
        return Receipt("octopush", ticket, number, status, url, fields, "json")

    return report


def _answer(code: int, message: str, status: int = 400, **extra: Any) -> web.Response:
    return web.json_response({"code": code, "message": message, **extra}, status=status)


def error_response(status: int) -> web.Response:
    if status == 401:
        return _answer(101, "Invalid api-login or api-key", 401)
    if status == 402:
        return _answer(103, "Not enough credit", 402)
    return _answer(status, "Injected failure", status)


def vendor_error(code: int) -> web.Response:
    return _answer(code, "Injected vendor error")


def _authorised(request: web.Request) -> bool:
    login, key = request.app[CREDENTIALS]
    given_login = request.headers.get("api-login", "").encode()
    given_key = request.headers.get("api-key", "").encode()
    return hmac.compare_digest(given_login, login.encode()) & hmac.compare_digest(given_key, key.encode())


@routes.post(PREFIX + "/generate")
@with_faults("octopush", "generate", error_response, vendor_error)
async def generate(request: web.Request) -> web.Response:
    if not _authorised(request):
        return error_response(401)
    try:
        body = GenerateBody.model_validate(json.loads(await request.read()))
    except (ValueError, ValidationError) as exc:
        return _answer(100, f"Invalid parameter: {str(exc).splitlines()[0]}")
    alphabet = (
        (string.digits if body.allow_digits else "")
        + (string.ascii_uppercase if body.allow_upper_case else "")
        + (string.ascii_lowercase if body.allow_lower_case else "")
        + (SPECIAL if body.allow_special_chars else "")
    )
    if not alphabet:
        return _answer(100, "Invalid parameter: no character class allowed")
    code = "".join(secrets.choice(alphabet) for _ in range(body.code_length))
    text = body.text.replace(PLACEHOLDER, code) if PLACEHOLDER in body.text else f"{body.text} {code}"
    otp = OctopushOtp(uuid.uuid4().hex, code, time.time() + body.validity_period, body.max_wrong_attempts)
    request.app[OTPS][otp.token] = otp
    ticket = f"sms_{uuid.uuid4().hex[:13]}"  # shaped like the tickets in Octopush's examples
    reporter = _reporter(request.app[STATE], ticket, body.phone_number, body.channel)
    message = Message("octopush", body.phone_number, text, code, otp.token, body.channel)
    request.app[NETWORK].carry(message, reporter)
    return web.json_response({"code": 0, "message": "success", "ticket_number": ticket, "otp_request_token": otp.token})


@routes.put(PREFIX + "/validate")
@with_faults("octopush", "validate", error_response, vendor_error)
async def validate(request: web.Request) -> web.Response:
    if not _authorised(request):
        return error_response(401)
    try:
        body = json.loads(await request.read())
        assert isinstance(body, dict)
    except (ValueError, AssertionError):
        return _answer(100, "Invalid parameter: body is not a JSON object")
    if not body.get("code"):
        return _answer(194, "The code is missing")
    if not body.get("otp_request_token"):
        return _answer(195, "The otp_request_token is missing")
    otp: OctopushOtp | None = request.app[OTPS].get(str(body["otp_request_token"]))
    if otp is None or otp.used:
        return _answer(198, "OTP request not found")
    if time.time() >= otp.expires_at:
        return _answer(197, "The code has expired")
    if otp.wrong >= otp.max_wrong:
        return _answer(196, "Maximum number of wrong attempts reached")
    if not hmac.compare_digest(str(body["code"]).encode(), otp.code.encode()):
        otp.wrong += 1
        return _answer(199, "Wrong code", remaining_number_of_attempts=otp.max_wrong - otp.wrong)
    otp.used = True
    return web.json_response({"code": 0, "message": "success"})


def setup(app: web.Application, login: str, key: str) -> None:
    app[CREDENTIALS] = (login, key)
    app[OTPS] = {}
    app.add_routes(routes)
