"""The API's OpenAPI 3.1 document, built from the pydantic models its handlers validate and answer with.

Request bodies are the models' validation schemas, answers and error bodies their serialization
schemas, so the document describes exactly what ``dispatcher/api.py`` parses and ``dispatcher/app.py``
renders. Served at ``GET /openapi.json``; ``tests/dispatcher/test_openapi.py`` checks that every
route of the app is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from dispatcher.api import CALLBACK_ROUTE, MAX_BODY_BYTES, OVERRIDE_ROUTE, OVERRIDES_ROUTE, PUBLIC_PATHS
from dispatcher.schemas import (
    AnyChannel,
    ErrorBody,
    IdempotencyKey,
    Liveness,
    OtpId,
    OtpReport,
    OverrideRequest,
    Readiness,
    ReceiptAck,
    ResendOtpRequest,
    ResendOtpResponse,
    RouteStatsReport,
    RoutingCountry,
    RoutingOverride,
    RoutingOverrides,
    SendOtpRequest,
    SendOtpResponse,
    StatsWindow,
    ValidationErrorBody,
    VendorName,
    VerifyOtpRequest,
    VerifyOtpResponse,
)

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearer"

_INVALID = "The request does not validate: D7's list of `{loc, msg, type}` (malformed JSON and a non-JSON body too)."
_UNAVAILABLE = "`SERVICE_UNAVAILABLE`: Redis or the broker did not answer within about two seconds."
_RATE_LIMITED = (
    "A send limit was reached: `RECIPIENT_LIMIT_REACHED`, `TOKEN_RATE_LIMITED`, `IP_RATE_LIMITED` or "
    "`PREFIX_BLOCKED`; `Retry-After` says when to try again."
)
_UNKNOWN = "`MESSAGE_LOG_NOT_EXISTS`: no OTP has this id, or it is gone."
_OVERRIDE_PATH = (
    ("path", "country", RoutingCountry, "A country as `OTP_METRICS_COUNTRIES` names it (`+33`), or `other`."),
    ("path", "vendor", VendorName, "A configured provider's name."),
)
_OVERRIDE_REFUSALS = {
    404: "`NOT_FOUND`: the path is not one of this API's.",
    422: f"{_INVALID} Also a country outside `OTP_METRICS_COUNTRIES` (and `other`), or a vendor not configured.",
    503: _UNAVAILABLE,
}
_Refs = dict[tuple[Any, JsonSchemaMode], dict[str, Any]]
"""A ``$ref`` to the schema of each (model, mode)."""


@dataclass(frozen=True)
class _Operation:
    """One route: what it reads, what it answers, and the refusals particular to it."""

    operation_id: str
    summary: str
    answer: type[BaseModel] | None
    """The 200 body; None: any JSON object, or Prometheus' text for ``text``."""
    body: type[BaseModel] | None = None
    refusals: dict[int, str] = field(default_factory=dict)
    idempotency_key: bool = False
    text: bool = False
    callback: bool = False
    """A vendor's callback: no token (the per-vendor secret in the path), the vendor's own body."""
    parameters: tuple[tuple[str, str, Any, str], ...] = ()
    """Path and query parameters: where, name, annotation (its schema), description (a query's is optional)."""


_VERIFY = _Operation(
    "verifyOtp",
    "Check a code: APPROVED, FAILED (also for an unknown otp_id), EXPIRED or ALREADY_VERIFIED",
    VerifyOtpResponse,
    VerifyOtpRequest,
    {
        503: f"{_UNAVAILABLE} Or `VENDOR_UNAVAILABLE`: the vendor that must check this code did not answer "
        "(the attempt is not counted)."
    },
)

OPERATIONS: dict[tuple[str, str], _Operation] = {
    ("POST", "/verify/v1/otp/send-otp"): _Operation(
        "sendOtp",
        "Record an OTP and queue its delivery",
        SendOtpResponse,
        SendOtpRequest,
        {
            403: "`COUNTRY_NOT_ALLOWED`: the number's country is not on the allowlist; `PREMIUM_NUMBER_NOT_ALLOWED`: "
            "a premium-rate or shared-cost number (refused unless `OTP_LIMITS__PREMIUM_NUMBERS`).",
            409: "`OTP_IN_FLIGHT` (with the open OTP's `otp_id`) or `REQUEST_IN_PROGRESS` (same Idempotency-Key).",
            422: f"{_INVALID} Or `IDEMPOTENCY_KEY_REUSED`, in the `{{code, message}}` shape.",
            429: _RATE_LIMITED,
            503: _UNAVAILABLE,
        },
        idempotency_key=True,
    ),
    ("POST", "/verify/v1/otp/resend-otp"): _Operation(
        "resendOtp",
        "Send an open OTP again",
        ResendOtpResponse,
        ResendOtpRequest,
        {
            400: "`RESEND_TOO_SOON` (with `Retry-After`), `RESEND_LIMIT_REACHED`, `OTP_EXPIRED`, "
            "`OTP_ALREADY_VERIFIED` or `OTP_LOCKED` (too many wrong codes).",
            404: _UNKNOWN,
            429: _RATE_LIMITED,
            503: _UNAVAILABLE,
        },
    ),
    ("POST", "/verify/v1/otp/verify-otp"): _VERIFY,
    ("POST", "/verify/v1/verify-otp"): replace(
        _VERIFY, operation_id="verifyOtpAtD7Heading", summary=f"{_VERIFY.summary} (the path in D7's page heading)"
    ),
    ("GET", "/verify/v1/report/{otp_id}"): _Operation(
        "report",
        "An OTP's status and every delivery attempt",
        OtpReport,
        refusals={404: _UNKNOWN, 503: _UNAVAILABLE},
        parameters=(("path", "otp_id", OtpId, "The id send-otp answered."),),
    ),
    ("POST", CALLBACK_ROUTE): _Operation(
        "receipt",
        "A vendor's delivery receipt (D7: success_url / failure_url calls; Octopush: acknowledgements of receipt). "
        "Answered 200 whether the receipt is new, repeated, late, unknown or unreadable; nothing changes twice.",
        ReceiptAck,
        refusals={
            404: "`NOT_FOUND`: no such vendor sends receipts, or the secret is wrong (nothing changes).",
            503: _UNAVAILABLE,
        },
        callback=True,
    ),
    ("GET", "/stats/v1/routes"): _Operation(
        "routeStats",
        "Each route's (vendor, channel, country) sends, receipts, conversions, expiries and median time to verify "
        "over the last hour or day",
        RouteStatsReport,
        refusals={503: _UNAVAILABLE},
        parameters=(
            ("query", "window", StatsWindow, "`hour` (the last 60 minutes, the default) or `day` (the last 1440)."),
        ),
    ),
    ("GET", OVERRIDES_ROUTE): _Operation(
        "routingOverrides", "Every routing override in force", RoutingOverrides, refusals={503: _UNAVAILABLE}
    ),
    ("PUT", OVERRIDE_ROUTE): _Operation(
        "setRoutingOverride",
        "Pin (it leads every send) or ban (it is never tried) a vendor for a country, and a channel if the body names "
        "one; every worker honours it within about a second, and each attempt's routing reason shows it",
        RoutingOverride,
        OverrideRequest,
        _OVERRIDE_REFUSALS,
        parameters=_OVERRIDE_PATH,
    ),
    ("DELETE", OVERRIDE_ROUTE): _Operation(
        "deleteRoutingOverride",
        "Lift a vendor's override for a country (and the channel the query names); answers the overrides left",
        RoutingOverrides,
        refusals={
            **_OVERRIDE_REFUSALS,
            404: "`OVERRIDE_NOT_FOUND`: no override is set for this country, channel and vendor; `NOT_FOUND`: the "
            "path is not one of this API's.",
        },
        parameters=(
            *_OVERRIDE_PATH,
            ("query", "channel", AnyChannel, "The channel of the override (default: the one for every channel)."),
        ),
    ),
    ("GET", "/healthz"): _Operation("healthz", "Liveness: the process serves HTTP", Liveness),
    ("GET", "/readyz"): _Operation(
        "readyz", "Readiness: Redis (records and broker) answers", Readiness, refusals={503: _UNAVAILABLE}
    ),
    ("GET", "/metrics"): _Operation(
        "metrics", "Prometheus metrics of this API process", None, refusals={503: _UNAVAILABLE}, text=True
    ),
    ("GET", "/openapi.json"): _Operation("openapi", "This document", None),
}
"""Every route of the API, by method and path."""


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in ``OPERATIONS``."""
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (ValidationErrorBody, "serialization"),
        (ErrorBody, "serialization"),
        *((operation.body, "validation") for operation in OPERATIONS.values() if operation.body),
        *((operation.answer, "serialization") for operation in OPERATIONS.values() if operation.answer),
    ]
    refs, definitions = models_json_schema(list(dict.fromkeys(keys)), ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _operation(path, operation, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "otp-dispatcher",
            "version": version("otp-dispatcher"),
            "description": "One-time passwords over SMS, in D7 Networks' Verify dialect.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _operation(path: str, operation: _Operation, refs: _Refs) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if operation.answer is not None:
        answer["content"] = _json(refs[operation.answer, "serialization"])
    elif operation.text:
        answer["content"] = {"text/plain": {"schema": {"type": "string"}}}
    else:
        answer["content"] = _json({"type": "object"})
    refusals = dict(operation.refusals)
    parameters: list[dict[str, Any]] = []
    document: dict[str, Any] = {"operationId": operation.operation_id, "summary": operation.summary}
    if path in PUBLIC_PATHS or operation.callback:
        document["security"] = []
    else:
        refusals[401] = "`ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED`: the bearer token is missing or unknown."
    if operation.body is not None:
        document["requestBody"] = {"required": True, "content": _json(refs[operation.body, "validation"])}
        refusals[413] = f"`BODY_TOO_LARGE`: the body is over {MAX_BODY_BYTES} bytes."
        refusals.setdefault(422, _INVALID)
    if operation.callback:
        document["requestBody"] = {
            "required": False,
            "description": "As the vendor sends it: JSON (D7, Octopush) or form fields (Octopush).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            },
        }
        refusals[413] = f"`BODY_TOO_LARGE`: the body is over {MAX_BODY_BYTES} bytes."
        for name, description in (
            ("vendor", "The provider's name in the chain (`d7`, `octopush`, ...)."),
            ("secret", "The vendor's callback secret, derived from `OTP_SECRET_KEY`."),
        ):
            parameters.append(
                {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}
            )
        parameters.append(
            {
                "name": "event",
                "in": "query",
                "required": False,
                "description": "D7 only: `success` or `failure`, as in the URLs given to D7 at send-otp.",
                "schema": {"type": "string", "enum": ["success", "failure"]},
            }
        )
    for where, name, annotation, description in operation.parameters:
        parameters.append(
            {
                "name": name,
                "in": where,
                "required": where == "path",
                "description": description,
                "schema": _schema(annotation),
            }
        )
        refusals.setdefault(422, _INVALID)
    if operation.idempotency_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The same key and body within 24 h answer the first answer and queue nothing.",
                "schema": _schema(IdempotencyKey),
            }
        )
    if parameters:
        document["parameters"] = parameters
    responses: dict[str, Any] = {"200": answer}
    for status in sorted(refusals):
        responses[str(status)] = _refusal(status, refusals[status], operation.idempotency_key, refs)
    document["responses"] = responses
    return document


def _refusal(status: int, description: str, idempotency_key: bool, refs: _Refs) -> dict[str, Any]:
    """A refusal in D7's shape: the 422 list, or ``{code, message}`` (also a reused Idempotency-Key's 422)."""
    invalid, refused = refs[ValidationErrorBody, "serialization"], refs[ErrorBody, "serialization"]
    if status != 422:
        schema = refused
    elif idempotency_key:
        schema = {"anyOf": [invalid, refused]}
    else:
        schema = invalid
    response: dict[str, Any] = {"description": description, "content": _json(schema)}
    if status == 429:
        retry_after = {"required": True, "schema": {"type": "integer", "minimum": 1}}
        response["headers"] = {"Retry-After": {"description": "Seconds until the limit lifts.", **retry_after}}
    return response


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _schema(annotation: Any) -> dict[str, Any]:
    return TypeAdapter(annotation).json_schema()
