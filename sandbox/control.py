"""The sandbox's own routes: the inbox that stands in for phones, fault injection, call counters, reset."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from aiohttp import web
from pydantic import ValidationError

from sandbox.faults import with_faults
from sandbox.state import STATE, VENDORS, Faults, Message

routes = web.RouteTableDef()


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
    request.app[STATE].deliver(Message(vendor, request.match_info["recipient"], text, code, reference))
    return web.json_response({"reference": reference}, status=201)


@routes.put("/_sandbox/faults/{vendor}")
async def set_faults(request: web.Request) -> web.Response:
    vendor = request.match_info["vendor"]
    if vendor not in VENDORS:
        return web.json_response({"error": f"unknown vendor {vendor}"}, status=404)
    try:
        faults = Faults.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc).splitlines()[0]}, status=400)
    request.app[STATE].faults[vendor] = faults
    return web.json_response(faults.model_dump())


@routes.post("/_sandbox/reset")
async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"status": "reset"})


@routes.get("/_sandbox/calls")
async def calls(request: web.Request) -> web.Response:
    return web.json_response({vendor: dict(counter) for vendor, counter in request.app[STATE].calls.items()})
