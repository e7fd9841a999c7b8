"""The sandbox's own routes: the inbox that stands in for phones, fault injection, call counters, the receipts
sent, account callback URLs, the phone that types codes, reset."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from sandbox import d7, octopush
from sandbox.delivery import NETWORK
from sandbox.faults import with_faults
from sandbox.state import STATE, VENDORS, Faults, Message, PhoneSettings, Url

FAILURE_STATUSES = {"d7": d7.FAILURE_STATUSES, "octopush": octopush.FAILURE_STATUSES}
"""The failure statuses each vendor's undelivered receipts may carry (the others send no receipts)."""
NO_ACCOUNT_CALLBACK = {
    "d7": "d7 takes its callback URLs with each send-otp (success_url, failure_url)",
    "messagecentral": "messagecentral documents no delivery callback",
    "console": "console sends no delivery receipts",
}

routes = web.RouteTableDef()
Model = TypeVar("Model", bound=BaseModel)


class AccountCallback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _parse(request: web.Request, model: type[Model]) -> Model:
    try:
        return model.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": str(exc).splitlines()[0]}), content_type="application/json"
        ) from None


@routes.get("/inbox/{recipient}")
async def read_inbox(request: web.Request) -> web.Response:
    """The last message the number received."""
    messages = request.app[STATE].inbox.get(request.match_info["recipient"])
    if not messages:
        return web.json_response({"error": "no message"}, status=404)
    return web.json_response(asdict(messages[-1]))


@routes.get("/inbox/{recipient}/all")
async def read_all_of_inbox(request: web.Request) -> web.Response:
    """Every message the number received, oldest first."""
    messages = request.app[STATE].inbox.get(request.match_info["recipient"], [])
    return web.json_response({"messages": [asdict(message) for message in messages]})


def _console_error(status: int) -> web.Response:
    return web.json_response({"error": "injected fault"}, status=status)


@routes.post("/inbox/{recipient}")
@with_faults("console", "inbox", _console_error)
async def drop_in_inbox(request: web.Request) -> web.Response:
    """Where the console provider leaves its messages."""
    try:
        body = await request.json()
        vendor, text, code = str(body["vendor"]), str(body["text"]), str(body["code"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "expected JSON with vendor, text and code"}, status=400)
    reference = str(uuid.uuid4())
    request.app[NETWORK].carry(Message(vendor, request.match_info["recipient"], text, code, reference))
    return web.json_response({"reference": reference}, status=201)


@routes.put("/_sandbox/faults/{vendor}")
async def set_faults(request: web.Request) -> web.Response:
    vendor = request.match_info["vendor"]
    if vendor not in VENDORS:
        return _error(f"unknown vendor {vendor}", 404)
    faults = await _parse(request, Faults)
    allowed = FAILURE_STATUSES.get(vendor, ())
    if faults.undelivered_status is not None and faults.undelivered_status not in allowed:
        return _error(f"undelivered_status for {vendor} must be one of {list(allowed)}")
    request.app[STATE].faults[vendor] = faults
    return web.json_response(faults.model_dump())


@routes.post("/_sandbox/reset")
async def reset(request: web.Request) -> web.Response:
    """Back to a fresh sandbox, pending receipts and typing dropped; the account callback URLs stay."""
    request.app[NETWORK].cancel()
    request.app[STATE].reset()
    return web.json_response({"status": "reset"})


@routes.get("/_sandbox/receipts")
async def receipts(request: web.Request) -> web.Response:
    """Every receipt sent or being sent, oldest first."""
    return web.json_response({"receipts": [asdict(receipt) for receipt in request.app[STATE].receipts]})


@routes.put("/_sandbox/callbacks/{vendor}")
async def set_account_callback(request: web.Request) -> web.Response:
    """The account-wide receipt URL of a vendor that takes one per account (Octopush)."""
    vendor = request.match_info["vendor"]
    if vendor not in VENDORS:
        return _error(f"unknown vendor {vendor}", 404)
    if vendor in NO_ACCOUNT_CALLBACK:
        return _error(NO_ACCOUNT_CALLBACK[vendor])
    callback = await _parse(request, AccountCallback)
    request.app[STATE].callbacks[vendor] = callback.url
    return web.json_response({"url": callback.url})


@routes.delete("/_sandbox/callbacks/{vendor}")
async def delete_account_callback(request: web.Request) -> web.Response:
    request.app[STATE].callbacks.pop(request.match_info["vendor"], None)
    return web.json_response({"url": None})


@routes.get("/_sandbox/callbacks")
async def account_callbacks(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].callbacks)


@routes.put("/_sandbox/phone")
async def set_phone(request: web.Request) -> web.Response:
    """From now on, every code delivered to an inbox is typed into the phone's URL after its delay."""
    phone = await _parse(request, PhoneSettings)
    request.app[STATE].phone = phone
    return web.json_response(_phone_settings(phone))


@routes.delete("/_sandbox/phone")
async def delete_phone(request: web.Request) -> web.Response:
    """No more typing (codes already waiting to be typed still are)."""
    request.app[STATE].phone = None
    return web.json_response({"phone": None})


@routes.get("/_sandbox/phone")
async def phone(request: web.Request) -> web.Response:
    """The phone's settings (its token hidden) and every code it typed, with the answer it got."""
    state = request.app[STATE]
    return web.json_response(
        {
            "phone": _phone_settings(state.phone) if state.phone else None,
            "typed": [asdict(typed) for typed in state.typed],
        }
    )


def _phone_settings(phone: PhoneSettings) -> dict[str, Any]:
    return phone.model_dump() | {"token": "***" if phone.token else None}


@routes.get("/_sandbox/calls")
async def calls(request: web.Request) -> web.Response:
    return web.json_response({vendor: dict(counter) for vendor, counter in request.app[STATE].calls.items()})
