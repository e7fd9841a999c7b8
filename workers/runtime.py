"""One event loop per worker process, on its own thread, with the pooled resources every task shares.

Celery runs tasks in pool threads; each hands its coroutine to this loop (``Runtime.run``) and waits.
The loop is uvloop's: the same asyncio API with far less overhead per callback and per socket read.
So one process keeps many vendor calls in flight over one ``aiohttp.ClientSession`` and one Redis
pool, and never starts a loop per task. The runtime is created on first use in each process (so a
forked child builds its own) and closed when the worker shuts down.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import uvloop

from config import Settings
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from vendors import Provider, build_providers
from workers.breaker import CircuitBreakers
from workers.delivery import Deliverer
from workers.postbacks import Postbacks

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
        redis = connect(settings.redis_url, settings.redis_timeout)
        self.store = OtpStore(redis, Sealer(settings.secret_key.get_secret_value()), settings.policy.record_grace)
        self.breakers = CircuitBreakers(redis)
        self.providers: dict[str, Provider] = self.run(self._open_providers(), timeout=10)
        self.deliverer = Deliverer(settings, self.store, self.breakers, self.providers)
        self.postbacks = Postbacks(settings, self.store, self._session)

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

    def close(self) -> None:
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
