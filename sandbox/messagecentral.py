"""Sandbox Message Central VerifyNow: token, send and validate, with its errors in ``responseCode``.

responseCode values used here: 200 success; 401 token missing or invalid (HTTP 401); 501 invalid
customerId; 505 invalid verificationId; 506 a request for this number is already pending within its
timeout; 511 invalid country code; 702 wrong code; 703 already verified; 705 expired; 800 maximum
attempts reached; 402 insufficient balance (HTTP 402, the 'no credit' fault; not in the seed docs).

No delivery receipts: VerifyNow documents token, send and validateOtp only, with no delivery callback and
no status endpoint, so none is imitated. The delivery faults still decide whether its messages reach the
inbox; a caller can judge its attempts by deadline alone.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import string
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

from sandbox.delivery import NETWORK
from sandbox.faults import with_faults
from sandbox.state import Message

TIMEOUT = 60
"""Seconds a sent code stays pending (a second send to the number before then is 506)."""
VALIDITY = 600
MAX_WRONG = 5

CREDENTIALS = web.AppKey("messagecentral_credentials", tuple)
TOKENS = web.AppKey("messagecentral_tokens", set)
VERIFICATIONS = web.AppKey("messagecentral_verifications", dict)
routes = web.RouteTableDef()


@dataclass
class Verification:
    verification_id: str
    number: str
    code: str
    sent_at: float
    wrong: int = 0
    verified: bool = False


def _answer(response_code: int, message: str, status: int = 400, data: object = None) -> web.Response:
    return web.json_response({"responseCode": response_code, "message": message, "data": data}, status=status)


def error_response(status: int) -> web.Response:
    if status == 402:
        return _answer(402, "INSUFFICIENT_BALANCE", 402)
    return _answer(status, "INJECTED_FAILURE", status)


def vendor_error(code: int) -> web.Response:
    return _answer(code, "INJECTED_VENDOR_ERROR")


@routes.get("/auth/v1/authentication/token")
@with_faults("messagecentral", "token", error_response, vendor_error)
async def token(request: web.Request) -> web.Response:
    customer, password = request.app[CREDENTIALS]
    try:
        key = base64.b64decode(request.query.get("key", ""), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        key = ""
    if request.query.get("customerId") != customer:
        return _answer(501, "INVALID_CUSTOMER_ID", 401)
    if not hmac.compare_digest(key.encode(), password.encode()) or request.query.get("scope") != "NEW":
        return _answer(401, "INVALID_KEY", 401)
    issued = uuid.uuid4().hex
    request.app[TOKENS].add(issued)
    return web.json_response({"status": 200, "token": issued})


def _refusal(request: web.Request) -> web.Response | None:
    if request.headers.get("authToken") not in request.app[TOKENS]:
        return _answer(401, "TOKEN_INVALID", 401)
    if request.query.get("customerId") != request.app[CREDENTIALS][0]:
        return _answer(501, "INVALID_CUSTOMER_ID")
    return None


@routes.post("/verification/v2/verification/send")
@with_faults("messagecentral", "send", error_response, vendor_error)
async def send(request: web.Request) -> web.Response:
    if refusal := _refusal(request):
        return refusal
    country, mobile = request.query.get("countryCode", ""), request.query.get("mobileNumber", "")
    if not (country.isdigit() and 1 <= len(country) <= 3 and country[0] != "0"):
        return _answer(511, "INVALID_COUNTRY_CODE")
    if not (mobile.isdigit() and 4 <= len(mobile) <= 14) or request.query.get("flowType") != "SMS":
        return _answer(400, "BAD_REQUEST")
    length = request.query.get("otpLength", "4")
    if not (length.isdigit() and 4 <= int(length) <= 8):
        return _answer(400, "BAD_REQUEST")
    number, now = f"+{country}{mobile}", time.time()
    pending = [v for v in request.app[VERIFICATIONS].values() if v.number == number and not v.verified]
    if any(now - v.sent_at < TIMEOUT for v in pending):
        return _answer(506, "REQUEST_ALREADY_EXISTS")
    code = "".join(secrets.choice(string.digits) for _ in range(int(length)))
    verification = Verification(str(secrets.randbelow(10**9) + 10**9), number, code, now)
    request.app[VERIFICATIONS][verification.verification_id] = verification
    request.app[NETWORK].carry(
        Message("messagecentral", number, f"{code} is your verification code", code, verification.verification_id)
    )
    data = {
        "verificationId": verification.verification_id,
        "mobileNumber": mobile,
        "responseCode": "200",
        "errorMessage": None,
        "timeout": str(TIMEOUT),
        "smsCLI": None,
        "transactionId": str(uuid.uuid4()),
    }
    return _answer(200, "SUCCESS", 200, data)


@routes.get("/verification/v2/verification/validateOtp")
@with_faults("messagecentral", "validateOtp", error_response, vendor_error)
async def validate(request: web.Request) -> web.Response:
    if refusal := _refusal(request):
        return refusal
    verification: Verification | None = request.app[VERIFICATIONS].get(request.query.get("verificationId", ""))
    if verification is None:
        return _answer(505, "INVALID_VERIFICATION_ID")
    if verification.verified:
        return _answer(703, "ALREADY_VERIFIED")
    if time.time() - verification.sent_at >= VALIDITY:
        return _answer(705, "VERIFICATION_EXPIRED")
    if verification.wrong >= MAX_WRONG:
        return _answer(800, "MAXIMUM_LIMIT_REACHED")
    if not hmac.compare_digest(request.query.get("code", "").encode(), verification.code.encode()):
        verification.wrong += 1
        return _answer(702, "WRONG_OTP_PROVIDED")
    verification.verified = True
    data = {
        "verificationId": verification.verification_id,
        "mobileNumber": verification.number,
        "verificationStatus": "VERIFICATION_COMPLETED",
        "responseCode": "200",
        "errorMessage": None,
        "transactionId": str(uuid.uuid4()),
        "authToken": None,
    }
    return _answer(200, "SUCCESS", 200, data)


def setup(app: web.Application, customer_id: str, password: str) -> None:
    app[CREDENTIALS] = (customer_id, password)
    app[TOKENS] = set()
    app[VERIFICATIONS] = {}
    app.add_routes(routes)
