"""What becomes of a message a sandbox vendor accepted: the phone network, the receipts and the phone.

Every accepted message goes through ``Network.carry``, which decides its fate under the vendor's delivery
faults (``sandbox/state.py``: ``Faults``) with one draw: silently dropped (``silent_drop_rate``: no inbox,
no receipt), undelivered (``undelivered_rate``: no inbox, an undelivered receipt) or delivered (the inbox;
then, unless ``no_receipt_rate`` loses it, a delivered receipt). A receipt goes out ``receipt_delay_ms``
after the message was accepted (a real timer), as the vendor's own HTTP request to the callback URL the
vendor was given: the vendor module builds it (``Reporter``), this module sends it and records it
(``GET /_sandbox/receipts``). A callback that does not answer 2xx is tried again after each of
``RETRY_DELAYS`` (so at most four attempts), as vendors retry their callbacks.

A delivered message is also typed by the sandbox phone when one is set (``PUT /_sandbox/phone``): after a
random delay in its range it POSTs ``{"recipient", "code"}`` to its URL, once, and records the answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

from sandbox.state import (
    DEFAULT_RECEIPT_DELAY_MS,
    STATE,
    Message,
    PhoneSettings,
    ReceiptRecord,
    SandboxState,
    TypedCode,
)

RETRY_DELAYS = (0.2, 0.5, 1.0)
"""Seconds before each retry of a receipt the callback did not acknowledge: four attempts in all."""
CALLBACK_TIMEOUT = 5.0
"""Seconds a callback (or the phone's URL) has to answer one attempt."""

Fate = Literal["delivered", "undelivered", "dropped"]


@dataclass(frozen=True)
class Receipt:
    """One delivery receipt as the vendor sends it: a POST of ``fields`` to ``url``, form-encoded or JSON."""

    vendor: str
    message_id: str
    recipient: str
    status: str
    url: str
    fields: dict[str, Any]
    encoding: Literal["form", "json"]


Reporter = Callable[[bool, str | None], Receipt | None]
"""A vendor's receipt for one message, built when it goes out: given whether the message was delivered and
the failure status the faults ask for (None: the vendor's generic one), the request to send, or None when
the vendor has nowhere to send it (no callback URL)."""


@dataclass
class Network:
    """Carries accepted messages to the inbox, sends their receipts, and types delivered codes."""

    state: SandboxState
    session: aiohttp.ClientSession | None = None
    pending: set[asyncio.Task[None]] = field(default_factory=set)
    timers: set[asyncio.TimerHandle] = field(default_factory=set)
    """Receipts still to be written (a timer each: cheaper than a task that sleeps, at a vendor's peak rate)."""

    def carry(self, message: Message, reporter: Reporter | None = None) -> Fate:
        """Deliver ``message`` (or not) under its vendor's faults and schedule its receipt."""
        faults = self.state.faults[message.vendor]
        applies = faults.applies_to(message.recipient)
        delay = (faults.receipt_delay_ms if applies else DEFAULT_RECEIPT_DELAY_MS) / 1000
        draw = random.random()
        fate: Fate = "delivered"
        if applies and draw < faults.silent_drop_rate:
            fate = "dropped"
        elif applies and draw < faults.silent_drop_rate + faults.undelivered_rate:
            fate = "undelivered"
        if fate == "dropped":
            return fate
        if fate == "delivered":
            self.state.deliver(message)
            self._type(message)
        if fate == "delivered" and applies and random.random() < faults.no_receipt_rate:
            return fate
        if reporter is not None:
            self._later(delay, reporter, fate == "delivered", faults.undelivered_status)
        return fate

    def cancel(self) -> None:
        """Forget every receipt and typing still to come."""
        for task in self.pending:
            task.cancel()
        self.pending.clear()
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    def _later(self, delay: float, reporter: Reporter, delivered: bool, failure: str | None) -> None:
        """In ``delay`` seconds, write the message's receipt and send it if the vendor has somewhere to."""

        def due() -> None:
            self.timers.discard(timer)
            receipt = reporter(delivered, failure)
            if receipt is not None:
                self._start(self._send(receipt))

        timer = asyncio.get_running_loop().call_later(delay, due)
        self.timers.add(timer)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _send(self, receipt: Receipt) -> None:
        record = ReceiptRecord(receipt.vendor, receipt.message_id, receipt.recipient, receipt.status, receipt.url)
        self.state.receipts.append(record)
        for retry_delay in (*RETRY_DELAYS, None):
            record.attempts += 1
            try:
                record.answer_status, _ = await self._post(receipt.url, receipt.fields, receipt.encoding)
                record.error = None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                record.answer_status, record.error = None, f"{type(exc).__name__}: {exc}"
            record.acknowledged = record.answer_status is not None and 200 <= record.answer_status < 300
            if record.acknowledged or retry_delay is None:
                return
            await asyncio.sleep(retry_delay)

    def _type(self, message: Message) -> None:
        if self.state.phone is not None:
            self._start(self._type_later(message, self.state.phone))

    async def _type_later(self, message: Message, phone: PhoneSettings) -> None:
        await asyncio.sleep(random.uniform(*phone.delay_ms) / 1000)
        typed = TypedCode(message.vendor, message.recipient, message.code)
        self.state.typed.append(typed)
        headers = {"Authorization": f"Bearer {phone.token}"} if phone.token else {}
        try:
            typed.answer_status, typed.answer = await self._post(
                phone.url, {"recipient": message.recipient, "code": message.code}, "json", headers
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            typed.error = f"{type(exc).__name__}: {exc}"

    async def _post(
        self, url: str, fields: dict[str, Any], encoding: str, headers: dict[str, str] | None = None
    ) -> tuple[int, object]:
        if self.session is None:
            raise aiohttp.ClientConnectionError("the sandbox is not running")
        body: dict[str, Any] = {"json": fields} if encoding == "json" else {"data": fields}
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT)
        async with self.session.post(url, headers=headers, timeout=timeout, **body) as response:
            text = await response.text()
            try:
                answer: object = await response.json(content_type=None) if text else None
            except ValueError:
                answer = text
            return response.status, answer


NETWORK = web.AppKey("sandbox_network", Network)


async def network_context(app: web.Application) -> AsyncIterator[None]:
    """The network's client session, for the sandbox app's lifetime; what is still to come is dropped at exit."""
    network = app[NETWORK]
    async with aiohttp.ClientSession() as session:
        network.session = session
        yield
        network.cancel()
        network.session = None


def setup(app: web.Application) -> None:
    app[NETWORK] = Network(app[STATE])
    app.cleanup_ctx.append(network_context)
