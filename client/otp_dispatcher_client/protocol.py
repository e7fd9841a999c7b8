"""The API's calls without I/O: what each one sends, and what each answer means.

Both clients build a ``Call`` here, send it with their own transport (aiohttp, or the standard
library's ``urllib``) and hand the status, the ``Retry-After`` header and the raw body back to
``Call.answer``, so the two cannot disagree about a route, a body or an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from otp_dispatcher_client.errors import (
    ApiError,
    Conflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NumberNotAllowed,
    Problem,
    RateLimited,
    ResendRefused,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    UnknownOtp,
)
from otp_dispatcher_client.models import (
    Attempt,
    AttemptOutcome,
    OtpReport,
    OtpStatus,
    ReceiptStatus,
    RouteFigures,
    RouteStatsReport,
    RoutingReason,
    SendOptions,
    SentOtp,
    StatsWindow,
    VerifyStatus,
    Workflow,
    WorkflowStep,
)

VERSION = "0.1.0"
DEFAULT_TIMEOUT = 10.0
"""Seconds a call may take; the API itself gives up on Redis or a vendor after a few seconds."""

_T = TypeVar("_T")
_BY_STATUS: dict[int, type[ApiError]] = {
    400: ResendRefused,
    401: Unauthorized,
    403: NumberNotAllowed,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}
_UNKNOWN_OTP = "MESSAGE_LOG_NOT_EXISTS"
_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@dataclass(frozen=True)
class Call(Generic[_T]):
    """One request to the API, and how to read its successful answer."""

    method: Literal["GET", "POST"]
    path: str
    parse: Callable[[Any], _T]
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def answer(self, status: int, retry_after: str | None, body: bytes) -> _T:
        """The result of a 2xx answer, or the error the answer stands for."""
        if not 200 <= status < 300:
            raise error(status, retry_after, body)
        try:
            return self.parse(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnexpectedResponse(f"the answer is not the API's {self.path} body", "BAD_RESPONSE", status) from exc


def headers(token: str) -> dict[str, str]:
    """The headers of every call."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": f"otp-dispatcher-client/{VERSION}",
    }


def send(recipient: str, content: str | None, options: SendOptions, idempotency_key: str | None) -> Call[SentOtp]:
    fields: dict[str, object] = {"recipient": recipient, "content": content, **options}
    extra = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    return _post("/verify/v1/otp/send-otp", fields, _sent, extra)


def resend(otp_id: str) -> Call[SentOtp]:
    return _post("/verify/v1/otp/resend-otp", {"otp_id": otp_id}, _sent)


def verify(otp_id: str, code: str) -> Call[VerifyStatus]:
    return _post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": code}, _verify_status)


def report(otp_id: str) -> Call[OtpReport]:
    return Call("GET", f"/verify/v1/report/{quote(otp_id, safe='')}", _report)


def route_stats(window: StatsWindow) -> Call[RouteStatsReport]:
    return Call("GET", f"/stats/v1/routes?window={quote(window, safe='')}", _route_stats)


def error(status: int, retry_after: str | None, body: bytes) -> ApiError:
    """The exception for an error answer: D7's body when there is one, else ``HTTP_<status>``."""
    code, message, detail = f"HTTP_{status}", f"HTTP {status}, without the API's error body", None
    with suppress(ValueError, KeyError, TypeError):
        detail = json.loads(body)["detail"]
    problems: tuple[Problem, ...] = ()
    if isinstance(detail, list):
        problems = tuple(_problem(item) for item in detail if isinstance(item, dict))
        code, message = "VALIDATION_ERROR", "; ".join(problem.msg for problem in problems) or message
    elif isinstance(detail, dict) and isinstance(detail.get("code"), str):
        code, message = detail["code"], str(detail.get("message", message))
    kind = _error_class(status, code)
    if issubclass(kind, InvalidRequest):
        return kind(message, code, status, problems)
    if kind is Conflict:
        otp_id = detail.get("otp_id") if isinstance(detail, dict) else None
        return Conflict(message, code, status, otp_id if isinstance(otp_id, str) else None)
    return kind(message, code, status, retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None)


def _error_class(status: int, code: str) -> type[ApiError]:
    if code == _KEY_REUSED:
        return IdempotencyKeyReused
    if status == 404:  # a 404 with another code is a URL that is not the API's (a wrong base_url)
        return UnknownOtp if code == _UNKNOWN_OTP else ApiError
    return _BY_STATUS.get(status, ApiError)


def _post(
    path: str, fields: dict[str, object], parse: Callable[[Any], _T], extra: dict[str, str] | None = None
) -> Call[_T]:
    body = json.dumps({key: value for key, value in fields.items() if value is not None}).encode()
    return Call("POST", path, parse, body, {"Content-Type": "application/json", **(extra or {})})


def _problem(item: dict[str, Any]) -> Problem:
    loc = item.get("loc")
    return Problem(tuple(loc) if isinstance(loc, list) else (), str(item.get("msg", "")), str(item.get("type", "")))


def _sent(data: Any) -> SentOtp:
    return SentOtp(
        otp_id=str(data["otp_id"]),
        status=OtpStatus(data["status"]),
        expiry=int(data["expiry"]),
        resend_count=int(data.get("resend_count", 0)),
    )


def _verify_status(data: Any) -> VerifyStatus:
    return VerifyStatus(data["status"])


def _report(data: Any) -> OtpReport:
    return OtpReport(
        otp_id=str(data["otp_id"]),
        status=OtpStatus(data["status"]),
        recipient=str(data["recipient"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        expiry=int(data["expiry"]),
        resend_count=int(data["resend_count"]),
        delivered_by=_optional_str(data.get("delivered_by")),
        failure_reason=_optional_str(data.get("failure_reason")),
        attempts=tuple(_attempt(item) for item in data["attempts"]),
        converted_by=None if data.get("converted_by") is None else _attempt(data["converted_by"]),
        workflow=None if data.get("workflow") is None else _workflow(data["workflow"]),
    )


def _attempt(data: Any) -> Attempt:
    return Attempt(
        send_number=int(data["send_number"]),
        vendor=str(data["vendor"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        latency_ms=float(data["latency_ms"]),
        outcome=AttemptOutcome(data["outcome"]),
        error_code=_optional_str(data.get("error_code")),
        step=_optional_int(data.get("step")),
        channel=_optional_str(data.get("channel")),
        receipt=_optional_receipt(data.get("receipt")),
        receipt_status=_optional_str(data.get("receipt_status")),
        receipt_reason=_optional_str(data.get("receipt_reason")),
        receipt_at=None if data.get("receipt_at") is None else datetime.fromisoformat(data["receipt_at"]),
        receipt_latency_ms=_optional_float(data.get("receipt_latency_ms")),
        routing=None if data.get("routing") is None else _routing(data["routing"]),
    )


def _routing(data: Any) -> RoutingReason:
    return RoutingReason(
        policy=str(data["policy"]),
        rank=int(data["rank"]),
        score=_optional_float(data.get("score")),
        successes=_optional_int(data.get("successes")),
        failures=_optional_int(data.get("failures")),
        explored=bool(data.get("explored", False)),
        pinned=bool(data.get("pinned", False)),
        banned=tuple(str(vendor) for vendor in data.get("banned", ())),
        reason=str(data["reason"]),
    )


def _workflow(data: Any) -> Workflow:
    return Workflow(
        name=str(data["name"]),
        step=int(data["step"]),
        channel_change=bool(data["channel_change"]),
        channels=tuple(str(channel) for channel in data["channels"]),
        steps=tuple(
            WorkflowStep(
                send_number=int(item["send_number"]),
                step=int(item["step"]),
                channel=_optional_str(item.get("channel")),
                vendor=_optional_str(item.get("vendor")),
                receipt=_optional_receipt(item.get("receipt")),
                outcome=str(item["outcome"]),
            )
            for item in data["steps"]
        ),
    )


def _route_stats(data: Any) -> RouteStatsReport:
    return RouteStatsReport(
        window=data["window"],
        since=datetime.fromisoformat(data["since"]),
        until=datetime.fromisoformat(data["until"]),
        routes=tuple(
            RouteFigures(
                vendor=str(item["vendor"]),
                channel=str(item["channel"]),
                country=str(item["country"]),
                sends=int(item["sends"]),
                delivered_receipts=int(item["delivered_receipts"]),
                undelivered_receipts=int(item["undelivered_receipts"]),
                conversions=int(item["conversions"]),
                conversion_rate=_optional_float(item["conversion_rate"]),
                expired_unconverted=int(item["expired_unconverted"]),
                median_verify_seconds=_optional_float(item["median_verify_seconds"]),
            )
            for item in data["routes"]
        ),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_receipt(value: Any) -> ReceiptStatus | None:
    return None if value is None else ReceiptStatus(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
