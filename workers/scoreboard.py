"""One worker process's view of the routing evidence and overrides: read from Redis about once a second, not per send.

The first send after ``refresh`` seconds reads them again (one pipelined read; the sends meanwhile wait for it, so
an override is honoured within about ``refresh`` seconds by every worker). A read that fails (Redis away) keeps the
last view and is tried again at the next send after ``refresh``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from config.routing import RoutingSettings
from dispatcher.errors import DispatcherError
from dispatcher.store import OtpStore
from workers.routing import Board

log = logging.getLogger(__name__)


class Scoreboard:
    """The routing ``Board`` of one worker process, at most ``refresh`` seconds old while Redis answers."""

    def __init__(self, store: OtpStore, settings: RoutingSettings, adaptive: bool) -> None:
        self._store = store
        self._settings = settings
        self._adaptive = adaptive
        """Evidence is read only when a route is adaptive (the overrides always are)."""
        self._board = Board()
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def board(self) -> Board:
        if time.monotonic() - self._read_at < self._settings.refresh:
            return self._board
        async with self._lock:
            if time.monotonic() - self._read_at >= self._settings.refresh:
                self._read_at = time.monotonic()
                try:
                    self._board = await self._read()
                except DispatcherError as exc:
                    log.warning("routing scores and overrides not read (%s); the last ones are used", exc)
        return self._board

    async def _read(self) -> Board:
        overrides = await self._store.overrides()
        if not self._adaptive:
            return Board(overrides=overrides)
        evidence = await self._store.evidence(self._settings.window, self._settings.conversion_wait)
        return Board(evidence, overrides)
