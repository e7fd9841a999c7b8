"""How injected faults shape one vendor request, before the vendor's handler sees it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from aiohttp import web

from workers.sandbox.state import STATE

HANG_SECONDS = 300.0

Answer = Callable[[int], web.Response]
"""A vendor's own error answer: for an HTTP status (402 stands for 'no credit'), or for one of its body
error codes."""


async def apply_faults(
    request: web.Request, vendor: str, endpoint: str, error_body: Answer, vendor_error: Answer | None = None
) -> web.Response | None:
    """Count the call, then answer with the fault in force, or None to let the vendor answer."""
    state = request.app[STATE]
    state.calls[vendor][endpoint] += 1
    faults = state.faults[vendor]
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.hang:
        await asyncio.sleep(HANG_SECONDS)
    if faults.no_credit:
        return error_body(402)
    failing = random.random() < faults.error_rate
    if faults.status is not None and failing:
        return error_body(faults.status)
    if faults.vendor_error is not None and vendor_error is not None and failing:
        return vendor_error(faults.vendor_error)
    return None
