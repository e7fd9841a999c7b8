"""The HTTP routes, in D7 Verify's dialect: parse the body, call the service, answer JSON."""

from __future__ import annotations

import hmac
import json
import logging
import math
from typing import Any, TypeVar

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, TypeAdapter, ValidationError

from config import Settings
from dispatcher.constants import QUEUES
from dispatcher.errors import InvalidRequest, ServiceUnavailable
from dispatcher.guards import Caller
from dispatcher.metrics import (
    QUEUE_DEPTH,
    RECEIPT_LATENCY,
    RECEIPTS,
    REGISTRY,
    ROUTE_RECEIPTS,
    SENDS_ACCEPTED,
    SENDS_OVERDUE,
    SENDS_PENDING,
    STORE_UP,
    VERIFICATIONS,
)
from dispatcher.schemas import (
    AnyChannel,
    IdempotencyKey,
    Liveness,
    OtpId,
    OverrideRequest,
    Readiness,
    ReceiptAck,
    ResendOtpRequest,
    RoutingCountry,
    SendOtpRequest,
    StatsWindow,
    VendorName,
    VerifyOtpRequest,
)
from dispatcher.service import OtpService
from dispatcher.store import ReceiptKind
from vendors import PROVIDER_CLASSES, Provider
from vendors.phone import mask_number
from vendors.receipts import BadReceipt, ReceiptOutcome, callback_secret

SERVICE = web.AppKey("service", OtpService)
OPENAPI = web.AppKey("openapi", str)
"""The OpenAPI document of this API, as JSON text, built once by ``create_app``."""
TOKEN_HASH = web.RequestKey("token_hash", str)
"""Request key under which the auth middleware leaves a short hash of the caller's token."""
MAX_BODY_BYTES = 16 * 1024
"""A send-otp body is well under 2 KiB; anything far larger is refused before it is parsed."""
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
"""Routes served without a token."""
CALLBACK_ROUTE = "/callbacks/{vendor}/{secret}"
"""Where vendors post delivery receipts: no token, the per-vendor secret in the path instead."""
RECEIVERS = web.AppKey("receivers", dict[str, tuple[str, type[Provider]]])
"""The vendors that send receipts, by name: the secret their callback URL carries and their adapter class."""

_OTP_ID: TypeAdapter[str] = TypeAdapter(OtpId)
_WINDOW: TypeAdapter[StatsWindow] = TypeAdapter(StatsWindow)
_NO_SECRET = "-" * 32
"""Compared against when the vendor is unknown, so an unknown vendor takes as long as a wrong secret."""
_IDEMPOTENCY_KEY: TypeAdapter[str] = TypeAdapter(IdempotencyKey)
_COUNTRY: TypeAdapter[str] = TypeAdapter(RoutingCountry)
_VENDOR: TypeAdapter[str] = TypeAdapter(VendorName)
_CHANNEL: TypeAdapter[str] = TypeAdapter(AnyChannel)
OVERRIDES_ROUTE = "/routing/v1/overrides"
OVERRIDE_ROUTE = OVERRIDES_ROUTE + "/{country}/{vendor}"

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_Body = TypeVar("_Body", bound=BaseModel)
_Value = TypeVar("_Value")


@routes.post("/verify/v1/otp/send-otp")
async def send_otp(request: web.Request) -> web.Response:
    body = await _parse(request, SendOtpRequest)
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        key = _validate(_IDEMPOTENCY_KEY, key, "header", "Idempotency-Key")
    answer = await request.app[SERVICE].send(body, _caller(request), key)
    SENDS_ACCEPTED.labels("send").inc()
    log.info("otp %s accepted for %s", answer.otp_id, mask_number(body.recipient), extra={"otp_id": answer.otp_id})
    return _json(answer)


@routes.post("/verify/v1/otp/resend-otp")
async def resend_otp(request: web.Request) -> web.Response:
    body = await _parse(request, ResendOtpRequest)
    answer = await request.app[SERVICE].resend(body, _caller(request))
    SENDS_ACCEPTED.labels("resend").inc()
    log.info("otp %s resend %d accepted", answer.otp_id, answer.resend_count, extra={"otp_id": answer.otp_id})
    return _json(answer)


@routes.post("/verify/v1/otp/verify-otp")
@routes.post("/verify/v1/verify-otp")  # the path in the heading of D7's page; its examples use the one above
async def verify_otp(request: web.Request) -> web.Response:
    body = await _parse(request, VerifyOtpRequest)
    answer = await request.app[SERVICE].verify(body)
    VERIFICATIONS.labels(answer.status.value).inc()
    log.info("otp %s verify %s", body.otp_id, answer.status, extra={"otp_id": body.otp_id, "outcome": answer.status})
    return _json(answer)


@routes.get("/verify/v1/report/{otp_id}")
async def report(request: web.Request) -> web.Response:
    otp_id = _validate(_OTP_ID, request.match_info["otp_id"], "path", "otp_id")
    return _json(await request.app[SERVICE].report(otp_id))


@routes.get("/stats/v1/routes")
async def route_stats(request: web.Request) -> web.Response:
    """Each route's (vendor, channel, country) outcomes over the last hour or day (``window``, default hour)."""
    window = _validate(_WINDOW, request.query.get("window", "hour"), "query", "window")
    return _json(await request.app[SERVICE].operators.route_stats(window))


@routes.get(OVERRIDES_ROUTE)
async def routing_overrides(request: web.Request) -> web.Response:
    """Every routing override in force."""
    return _json(await request.app[SERVICE].operators.overrides())


@routes.put(OVERRIDE_ROUTE)
async def set_routing_override(request: web.Request) -> web.Response:
    """Pin or ban a vendor for a country (and a channel); every worker honours it within about a second."""
    country, vendor = _override_path(request)
    body = await _parse(request, OverrideRequest)
    return _json(await request.app[SERVICE].operators.set_override(country, vendor, body))


@routes.delete(OVERRIDE_ROUTE)
async def delete_routing_override(request: web.Request) -> web.Response:
    """Lift a vendor's override for a country (and the ``channel`` query parameter's channel)."""
    country, vendor = _override_path(request)
    channel = request.query.get("channel")
    if channel is not None:
        channel = _validate(_CHANNEL, channel, "query", "channel")
    await request.app[SERVICE].operators.delete_override(country, vendor, channel)
    return _json(await request.app[SERVICE].operators.overrides())


def _override_path(request: web.Request) -> tuple[str, str]:
    country = _validate(_COUNTRY, request.match_info["country"], "path", "country")
    return country, _validate(_VENDOR, request.match_info["vendor"], "path", "vendor")


@routes.post(CALLBACK_ROUTE)
async def receipt(request: web.Request) -> web.Response:
    """A vendor's delivery receipt. A wrong secret or a vendor without receipts is 404 and changes nothing; every
    receipt of the right vendor is answered 200 at once (the store's write is one short script), even one that
    is unknown, late, repeated or unreadable, so the vendor does not retry it forever. Never logs the path
    (it holds the secret) nor the receipt's number."""
    vendor = request.match_info["vendor"]
    receivers = request.app[RECEIVERS]
    expected, adapter = receivers.get(vendor, (_NO_SECRET, None))
    if not hmac.compare_digest(request.match_info["secret"].encode(), expected.encode()) or adapter is None:
        raise web.HTTPNotFound()
    try:
        parsed = adapter.parse_receipt(await request.read(), request.content_type, request.query)
    except BadReceipt as exc:
        RECEIPTS.labels(vendor, ReceiptOutcome.NONE.value, "INVALID").inc()
        log.warning("receipt from %s ignored: %s", vendor, exc, extra={"vendor": vendor})
        return _json(ReceiptAck())
    answer = await request.app[SERVICE].receipt(vendor, parsed)
    RECEIPTS.labels(vendor, parsed.outcome.value, answer.kind.value).inc()
    if answer.kind is ReceiptKind.RECORDED and parsed.outcome is not ReceiptOutcome.NONE:
        ROUTE_RECEIPTS.labels(vendor, answer.channel, answer.country, parsed.outcome.value).inc()
        if answer.latency_ms:
            RECEIPT_LATENCY.labels(vendor, answer.channel).observe(answer.latency_ms / 1000)
    fields = {"otp_id": answer.otp_id or None, "vendor": vendor, "outcome": parsed.outcome.value}
    log.info(
        "otp %s attempt %d: receipt %s (%s) from %s: %s",
        answer.otp_id or "-",
        answer.attempt,
        parsed.outcome,
        parsed.vendor_status,
        vendor,
        answer.kind,
        extra=fields,
    )
    return _json(ReceiptAck())


def receivers(settings: Settings) -> dict[str, tuple[str, type[Provider]]]:
    """The callback secret and adapter class of every configured vendor that sends receipts."""
    key = settings.secret_key.get_secret_value()
    return {
        provider.name: (callback_secret(key, provider.name), PROVIDER_CLASSES[provider.kind])
        for provider in settings.providers
        if PROVIDER_CLASSES[provider.kind].receipts
    }


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP (no token needed)."""
    return _json(Liveness())


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this API process, with the depth of each queue (no token needed). Answers even
    while Redis is away (that is when the metrics matter): the depths read NaN and ``otp_store_up`` 0."""
    try:
        backlog = await request.app[SERVICE].backlog()
    except ServiceUnavailable:
        STORE_UP.set(0)
        for gauge in (*(QUEUE_DEPTH.labels(queue) for queue in QUEUES), SENDS_PENDING, SENDS_OVERDUE):
            gauge.set(math.nan)
    else:
        STORE_UP.set(1)
        for queue, depth in backlog.queue_depths.items():
            QUEUE_DEPTH.labels(queue).set(depth)
        SENDS_PENDING.set(backlog.pending)
        SENDS_OVERDUE.set(backlog.overdue)
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis, which holds the records and is the broker, answers (no token needed)."""
    await request.app[SERVICE].ping()
    return _json(Readiness())


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document (no token needed)."""
    return web.json_response(text=request.app[OPENAPI])


def _caller(request: web.Request) -> Caller:
    """The API token (as set by the auth middleware) and the peer address, for the send limits."""
    return Caller(token=request.get(TOKEN_HASH), ip=request.remote)


async def _parse(request: web.Request, model: type[_Body]) -> _Body:
    """The request body as ``model``, or ``InvalidRequest`` with D7's ``detail`` items.

    Like D7, a body without a Content-Type is read as JSON; one with another Content-Type is refused.
    """
    if hdrs.CONTENT_TYPE in request.headers and not _is_json(request.content_type):
        raise InvalidRequest.at(["header", "Content-Type"], "The body must be JSON (application/json)", "content_type")
    raw = await request.read()
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than Python's stack
        raise InvalidRequest.at(["body"], "Body is not valid JSON", "json_invalid") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc, "body") from None


def _is_json(content_type: str) -> bool:
    kind, _, subtype = content_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _validate(adapter: TypeAdapter[_Value], value: str, *where: str) -> _Value:
    """``value`` validated by ``adapter``, or ``InvalidRequest`` located at ``where``."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc, *where) from None


def _json(model: BaseModel) -> web.Response:
    return web.json_response(text=model.model_dump_json())
