"""Postbacks: once a send is final, POST a signed JSON event to the OTP's success_url or failure_url.

The body is ``schemas.Postback`` (no code, the number not at all). Headers:
``X-OTP-Timestamp`` (Unix seconds) and ``X-OTP-Signature: sha256=<hex>``, the HMAC-SHA256 with the
postback secret of ``<timestamp>.<body>``. Receivers recompute it over the raw body, compare in
constant time and refuse old timestamps (see README). A postback owed is kept in Redis with the send's
outcome until the receiver takes it (``SweepOperations``), so none is lost while Redis or the broker is away.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime

import aiohttp

from config import Settings
from dispatcher.schemas import Postback, PostbackEvent
from dispatcher.store import OtpStore

SIGNATURE_HEADER = "X-OTP-Signature"
TIMESTAMP_HEADER = "X-OTP-Timestamp"
POSTBACK_TIMEOUT = aiohttp.ClientTimeout(total=10)

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Postbacks:
    def __init__(self, settings: Settings, store: OtpStore, session: aiohttp.ClientSession) -> None:
        self._secret = settings.postback_secret.get_secret_value()
        self._retry_delay = settings.postback_retry_delay
        self._retry_delay_max = settings.postback_retry_delay_max
        self._store = store
        self._session = session

    async def deliver(self, otp_id: str, event: PostbackEvent) -> None:
        """POST the event once. One the receiver took (or with nothing to send) is owed no more; one it did not
        take is due again after a delay doubling with each try (the sweeper queues it then)."""
        if await self.post(otp_id, event):
            await self._store.postback_received(otp_id, event)
            return
        tries = await self._store.postback_tries(otp_id)
        delay = min(self._retry_delay_max, self._retry_delay * 2 ** min(tries - 1, 32))
        await self._store.postback_later(otp_id, event, delay, time.time())

    async def post(self, otp_id: str, event: PostbackEvent) -> bool:
        """POST the event once; True when it needs no retry (received, or nothing to send)."""
        state = await self._store.delivery_state(otp_id)
        spec = None if state is None else state.spec
        url = None if spec is None else spec.success_url if event is PostbackEvent.DELIVERED else spec.failure_url
        if url is None:
            return True
        now = time.time()
        report = await self._store.report(otp_id, now)
        fields = report.model_dump() | {"event": event, "sent_at": datetime.fromtimestamp(now, tz=UTC)}
        body = Postback.model_validate(fields).model_dump_json().encode()
        timestamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            async with self._session.post(url, data=body, headers=headers, timeout=POSTBACK_TIMEOUT) as response:
                received = 200 <= response.status < 300
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            received, status = False, type(exc).__name__
        log.info("otp %s postback %s: %s", otp_id, event, status)
        return received
