"""One event loop per worker process, on its own thread, with the pooled resources every task shares.

Celery runs tasks in pool threads; each hands its coroutine to this loop (``Runtime.run``) and waits.
The loop is uvloop's: the same asyncio API with far less overhead per callback and per socket read.
So one process keeps many vendor calls in flight over one ``aiohttp.ClientSession`` and one Redis
pool, and never starts a loop per task. The runtime is created on first use in each process (so a
forked child builds its own) and closed when the worker shuts down.

The loop also runs the process's ``Sweeper`` (started once the worker is ready), which queues again the
jobs the broker lost, and the Deliverer's tries of the last writes Redis was away for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import uvloop

from config import Settings
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect_to
from vendors import Provider, build_providers
from workers.breaker import CircuitBreakers
from workers.delivery import Deliverer
from workers.polling import Deadlines
from workers.postbacks import Postbacks
from workers.sweeper import QueueDeadlines, QueuePostback, QueueSends, SendBacklog, Sweeper

MAX_VENDOR_CONNECTIONS = 200

_T = TypeVar("_T")


class Runtime:
    """The loop thread, the HTTP session, the store and the provider chain of one worker process."""

    def __init__(self, settings: Settings) -> None:
        settings.require("redis_url", "secret_key")
        assert settings.redis_url is not None
        self._settings = settings
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otp-runtime", daemon=True)
        self._thread.start()
        assert settings.store_redis is not None
        redis = connect_to(settings.store_redis)
        sealer = Sealer(settings.secret_key.get_secret_value())
        self.store = OtpStore(redis, sealer, settings.policy.record_grace, settings.sweep_interval)
        self.breakers = CircuitBreakers(redis)
        self.providers: dict[str, Provider] = self.run(self._open_providers(), timeout=10)
        self.deliverer = Deliverer(settings, self.store, self.breakers, self.providers)
        self.postbacks = Postbacks(settings, self.store, self._session)
        self.deadlines = Deadlines(self.store, self.providers)
        self._background: list[concurrent.futures.Future[None]] = []

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coroutine`` on the process loop and wait for it; cancelled if ``timeout`` passes first.

        The coroutines the tasks hand over bound themselves (vendor and Redis timeouts, each delivery
        run cut at its lease), so a batch waiting for its turn (``delivery.MAX_RUNS``) is not cut short.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def postpone(self, otp_ids: list[str], until: float) -> None:
        """Make these OTPs not due before ``until`` (a worker took their job), without waiting for Redis."""
        asyncio.run_coroutine_threadsafe(self.store.postpone(otp_ids, until), self._loop)

    def start_background(
        self,
        send_backlog: SendBacklog,
        queue_sends: QueueSends,
        queue_postback: QueuePostback,
        queue_deadlines: QueueDeadlines | None = None,
    ) -> None:
        """Run, on this process's loop until the runtime closes, the sweeper (``workers/sweeper.py``) and the
        Deliverer's tries of the last writes Redis was away for."""
        settings = self._settings
        sweeper = Sweeper(
            self.store,
            settings.sweep_interval,
            settings.visibility_timeout,
            send_backlog,
            queue_sends,
            queue_postback,
            queue_deadlines,
        )
        self._background = [
            asyncio.run_coroutine_threadsafe(sweeper.run(), self._loop),
            asyncio.run_coroutine_threadsafe(self.deliverer.keep_writing(), self._loop),
        ]

    def close(self) -> None:
        for task in self._background:
            task.cancel()
        self.run(self._close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _open_providers(self) -> dict[str, Provider]:
        connector = aiohttp.TCPConnector(limit=MAX_VENDOR_CONNECTIONS, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return build_providers(self._settings, self._session)

    async def _close(self) -> None:
        await self._session.close()
        await self.store.close()


_lock = threading.Lock()
_runtime: Runtime | None = None
_owner_pid = 0


def current_runtime(settings: Settings) -> Runtime:
    """This process's runtime, created on first use (and again in a forked child)."""
    global _runtime, _owner_pid
    with _lock:
        if _runtime is None or _owner_pid != os.getpid():
            _runtime, _owner_pid = Runtime(settings), os.getpid()
        return _runtime


def close_runtime() -> None:
    """Close this process's runtime, if it has one."""
    global _runtime
    with _lock:
        if _runtime is not None and _owner_pid == os.getpid():
            _runtime.close()
        _runtime = None
