"""The aiohttp application: ``create_app(settings)`` with auth, D7-shaped errors and the service."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from config import Settings
from dispatcher.api import MAX_BODY_BYTES, OPENAPI, PUBLIC_PATHS, RECEIVERS, SERVICE, TOKEN_HASH, receivers, routes
from dispatcher.errors import (
    Conflict,
    DispatcherError,
    InvalidRequest,
    NumberNotAllowed,
    RateLimited,
    ResendRefused,
    Unauthorized,
)
from dispatcher.metrics import HTTP_LATENCY, HTTP_REQUESTS, REFUSALS
from dispatcher.openapi import openapi_document
from dispatcher.schemas import ErrorBody, ErrorDetail, ValidationErrorBody
from dispatcher.service import OtpService
from vendors.receipts import CALLBACK_PREFIX

log = logging.getLogger(__name__)

_UNAUTHORIZED_MESSAGE = "It looks like your requests were failed due to a missing or invalid 'Access Token'."


def create_app(settings: Settings) -> web.Application:
    """The API app, with its own Redis pool, job publisher and vendor session (opened on start-up)."""
    settings.require("api_tokens", "secret_key", "redis_url")
    tokens = tuple(token.get_secret_value().encode() for token in settings.api_tokens)
    app = web.Application(middlewares=[_measured, _errors, _auth(tokens)], client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes)
    app[OPENAPI] = json.dumps(openapi_document())
    app[RECEIVERS] = receivers(settings)

    async def service(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = OtpService.connect(settings)
        yield
        await app[SERVICE].close()

    app.cleanup_ctx.append(service)
    return app


def error_body(error: DispatcherError) -> web.Response:
    """D7's error shapes: a list of ``{"loc", "msg", "type"}`` for 422, ``{"code", "message"}`` otherwise."""
    if isinstance(error, InvalidRequest):
        return _body(ValidationErrorBody(detail=error.errors), error.status)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | ResendRefused) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    otp_id = error.otp_id if isinstance(error, Conflict) else None
    return _body(
        ErrorBody(detail=ErrorDetail(code=error.code, message=error.message, otp_id=otp_id)), error.status, headers
    )


@web.middleware
async def _measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route pattern (never the path: it may hold an otp_id), method and status."""
    started = time.perf_counter()
    response = await handler(request)
    route = _route(request)
    HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(route, request.method, str(response.status)).inc()
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DispatcherError as error:
        if isinstance(error, RateLimited | NumberNotAllowed | Conflict):
            REFUSALS.labels(error.code).inc()
        return error_body(error)
    except web.HTTPRequestEntityTooLarge:
        return _http_error(413, "BODY_TOO_LARGE", f"The body must be at most {MAX_BODY_BYTES} bytes.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers[hdrs.ALLOW]} if hdrs.ALLOW in exc.headers else {}  # on a 405
        return _http_error(exc.status, exc.reason.upper().replace(" ", "_"), exc.reason, allow)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, _route(request))
        return _http_error(500, "INTERNAL_ERROR", "Something went wrong on our side; the request was not processed.")


def _route(request: web.Request) -> str:
    """The request's route pattern, never its path (a path may hold an otp_id or a callback secret)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _auth(tokens: tuple[bytes, ...]) -> Middleware:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or request.path.startswith(CALLBACK_PREFIX):
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        # aiohttp keeps bytes that are not UTF-8 as surrogates: encode them back rather than fail with a 500
        token = presented.strip().encode(errors="surrogateescape")
        if scheme.lower() != "bearer" or not _known(token, tokens):
            raise Unauthorized(_UNAUTHORIZED_MESSAGE)
        request[TOKEN_HASH] = hashlib.sha256(token).hexdigest()[:16]
        return await handler(request)

    return auth


def _known(presented: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Compares against every token in constant time, so timing tells nothing about which was close."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(presented, token)
    return found


def _http_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _body(ErrorBody(detail=ErrorDetail(code=code, message=message)), status, headers)


def _body(body: ValidationErrorBody | ErrorBody, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(text=body.model_dump_json(exclude_none=True), status=status, headers=headers)
