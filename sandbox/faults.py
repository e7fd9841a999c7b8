"""How injected faults shape one vendor request: wrap the vendor's handler with ``with_faults``.

Once a request has arrived its work is carried out, even if the caller hangs up, as a vendor's would.
Before the vendor's handler: ``latency_ms`` (the vendor is slow to start: a request the caller gave up
on is still carried out, so its code lands late), ``hang``, ``no_credit``, ``status``, ``vendor_error``
and the garbage answers that replace the vendor's (nothing is sent). After it (the vendor did its work,
the code is in the inbox): ``wrong_content_type`` garbage (the real answer labelled ``text/plain``) and
``late_answer_ms`` (the answer comes this much later: the caller may time out on a code that was sent).
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandbox.state import STATE, Faults, Garbage

HANG_SECONDS = 300.0
HTML_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"

Answer = Callable[[int], web.Response]
"""A vendor's own error answer: for an HTTP status (402 stands for 'no credit'), or for one of its body
error codes."""
Handler = Callable[[web.Request], Awaitable[web.Response]]


def with_faults(
    vendor: str, endpoint: str, error_body: Answer, vendor_error: Answer | None = None
) -> Callable[[Handler], Handler]:
    """Count each call of the vendor's ``endpoint``, and answer it with the faults in force."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def faulty(request: web.Request) -> web.Response:
            state = request.app[STATE]
            state.calls[vendor][endpoint] += 1
            faults = state.faults[vendor]
            await request.read()  # the whole request has arrived (kept for the handler) before any fault
            if faults.hang:
                await asyncio.sleep(HANG_SECONDS)
            # Carried out even if the caller gives up and the server cancels this handler, as a vendor would.
            work = asyncio.ensure_future(_carry_out(request, faults, handler, error_body, vendor_error))
            _carrying_out.add(work)
            work.add_done_callback(_carrying_out.discard)
            return await asyncio.shield(work)

        return faulty

    return wrap


_carrying_out: set[asyncio.Future[web.Response]] = set()


async def _carry_out(
    request: web.Request, faults: Faults, handler: Handler, error_body: Answer, vendor_error: Answer | None
) -> web.Response:
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.no_credit:
        return error_body(402)
    failing = random.random() < faults.error_rate
    if faults.garbage is not None and faults.garbage != "wrong_content_type" and failing:
        return garbage(faults.garbage, faults.status or 200)
    if faults.status is not None and faults.garbage is None and failing:
        return error_body(faults.status)
    if faults.vendor_error is not None and vendor_error is not None and failing:
        return vendor_error(faults.vendor_error)
    response = await handler(request)
    if faults.garbage == "wrong_content_type" and failing:
        response = web.Response(body=response.body, status=response.status, content_type="text/plain")
    if faults.late_answer_ms:
        await asyncio.sleep(faults.late_answer_ms / 1000)
    return response


def garbage(kind: Garbage, status: int) -> web.Response:
    """An answer no vendor documents: what proxies, crashed backends and buggy releases send."""
    if kind == "invalid_json":
        return web.Response(body=b'{"otp_id": "3f2c', status=status, content_type="application/json")
    if kind == "html":
        return web.Response(body=HTML_ERROR_PAGE, status=status, content_type="text/html")
    return web.Response(body=b"", status=status, content_type="application/json")
