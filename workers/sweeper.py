"""The sweeper: queues again the send and postback jobs the broker lost, so an accepted OTP is never lost.

Every worker process runs one on its event loop; one process at a time sweeps (a lease in Redis for one
sweep interval), so the whole dispatcher sweeps about once per interval whatever its number of workers.
A sweep asks the store for the OTPs whose due time passed with no run holding them (``SweepOperations``)
and queues a job for each, with a new job number (older copies then do nothing); then the same for the
postbacks owed, and the workflow deadline jobs; last, the OTPs whose code expired unverified debit the attempts
they made (``otp_expired_unconverted``, counted here, by the process that swept them). A job lost between the
broker's pop and the worker's bookkeeping (a worker killed or frozen then), or refused by the broker, is so queued
again at most two sweep intervals after it was due.
While Redis is away nothing is swept and nothing is lost: the due times wait in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from dispatcher.errors import DispatcherError
from dispatcher.schemas import PostbackEvent
from dispatcher.store import Lost, OtpStore, Overdue
from workers.metrics import EXPIRED_UNCONVERTED

log = logging.getLogger(__name__)

SendBacklog = Callable[[], bool]
"""Whether send jobs wait in the broker's queue (blocking: run in a thread)."""
QueueSends = Callable[[list[Lost]], None]
"""Publishes send jobs (blocking: run in a thread)."""
QueuePostback = Callable[[str, PostbackEvent], None]
QueueDeadlines = Callable[[list[Overdue]], None]
"""Publishes workflow deadline jobs (blocking: run in a thread)."""


class Sweeper:
    def __init__(
        self,
        store: OtpStore,
        interval: float,
        horizon: float,
        send_backlog: SendBacklog,
        queue_sends: QueueSends,
        queue_postback: QueuePostback,
        queue_deadlines: QueueDeadlines | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._horizon = horizon
        """How long a job may wait in a queue that is not empty before it is taken for lost."""
        self._send_backlog = send_backlog
        self._queue_sends = queue_sends
        self._queue_postback = queue_postback
        self._queue_deadlines = queue_deadlines
        self._token = secrets.token_hex(8)

    async def run(self) -> None:
        """Sweep every interval when it is this process's turn, until cancelled."""
        while True:
            try:
                await self.sweep_once()
            except DispatcherError as exc:  # Redis away: the due times wait there
                log.info("sweep skipped: %s", exc)
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(self._interval)

    async def sweep_once(self) -> int:
        """One sweep if it is this process's turn; how many jobs it queued again."""
        if not await self._store.take_sweep_turn(self._token):
            return 0
        loop = asyncio.get_running_loop()
        backlog = await loop.run_in_executor(None, self._send_backlog)
        now = time.time()
        lost = await self._store.sweep(now, self._horizon, backlog)
        owed = await self._store.sweep_postbacks(now)
        if lost:
            log.warning(
                "sweeper: %d send jobs were lost; queued again: %s", len(lost), [item.job.otp_id for item in lost]
            )
            await loop.run_in_executor(None, self._queue_sends, lost)
        for otp_id, event in owed:
            log.info("sweeper: postback %s of otp %s is due; queued again", event, otp_id, extra={"otp_id": otp_id})
            await loop.run_in_executor(None, self._queue_postback, otp_id, event)
        overdue = await self._store.sweep_deadlines(now) if self._queue_deadlines is not None else []
        if overdue and self._queue_deadlines is not None:
            log.warning("sweeper: %d workflow deadline jobs were late or lost; queued again", len(overdue))
            await loop.run_in_executor(None, self._queue_deadlines, overdue)
        for route in await self._store.sweep_expired(now):
            EXPIRED_UNCONVERTED.labels(route.vendor, route.channel, route.country).inc()
        return len(lost) + len(owed) + len(overdue)
