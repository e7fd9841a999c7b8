"""One event loop per worker process, on its own thread, with the pooled resources every task shares.

Celery runs tasks in pool threads; each hands its coroutine to this loop (``Runtime.run``) and waits.
The loop is uvloop's: the same asyncio API with far less overhead per callback and per socket read.
So one process keeps many vendor calls in flight over one ``aiohttp.ClientSession`` and one Redis
pool, and never starts a loop per task. The runtime is created on first use in each process (so a
forked child builds its own) and closed when the worker shuts down.

Its ``Outbox`` keeps the jobs the broker could not take (Redis away) and publishes them again from the
loop, so no pool thread ever waits for the broker to come back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import uvloop
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from config import Settings
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect_to
from vendors import Provider, build_providers
from workers.breaker import CircuitBreakers
from workers.delivery import Deliverer
from workers.postbacks import Postbacks

MAX_VENDOR_CONNECTIONS = 200
REPUBLISH_DELAY = 0.1
"""Seconds before the outbox first tries again to publish the jobs the broker refused..."""
REPUBLISH_DELAY_MAX = 1.0
"""...doubling up to this (each try costs one connection attempt while Redis is away)."""
PUBLISH_ERRORS = (KombuError, RedisError, OSError)
"""What a publish raises when the broker cannot take the job."""

log = logging.getLogger(__name__)

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
        self.store = OtpStore(redis, Sealer(settings.secret_key.get_secret_value()), settings.policy.record_grace)
        self.breakers = CircuitBreakers(redis)
        self.providers: dict[str, Provider] = self.run(self._open_providers(), timeout=10)
        self.deliverer = Deliverer(settings, self.store, self.breakers, self.providers)
        self.postbacks = Postbacks(settings, self.store, self._session)
        self.outbox = Outbox(self._loop)

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
        self.outbox.close()
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


@dataclass(frozen=True, slots=True)
class _Kept:
    publish: Callable[[], None]
    expires_at: float
    what: str


class Outbox:
    """Publishes jobs from pool threads; keeps those the broker cannot take and publishes them again from the
    process's event loop, ``REPUBLISH_DELAY`` to ``REPUBLISH_DELAY_MAX`` apart, until the broker takes them or
    they expire.

    A pool thread tries one publish (bounded by the broker's socket timeouts) and moves on whatever happens;
    while jobs are kept it does not even try (the broker is away), it queues behind them. The tries again
    run on the outbox's own thread, started by the loop, never on a pool thread. Kept jobs live in this
    process only: a worker that stops while the broker is away loses them (logged).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._kept: list[_Kept] = []
        self._drainer: concurrent.futures.Future[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otp-outbox")

    @property
    def kept(self) -> int:
        """Jobs waiting for the broker."""
        with self._lock:
            return len(self._kept)

    def publish(self, publish: Callable[[], None], expires_at: float, what: str) -> bool:
        """Call ``publish`` now, or keep it for later when the broker cannot take it; True if published now.
        ``what`` names the job in logs."""
        kept = _Kept(publish, expires_at, what)
        with self._lock:
            if self._kept:
                self._keep(kept)
                return False
        try:
            publish()
        except PUBLISH_ERRORS as exc:
            log.warning("%s: the broker cannot take it (%s); kept in the worker until it can", what, type(exc).__name__)
            with self._lock:
                self._keep(kept)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            lost, self._kept = len(self._kept), []
            if self._drainer is not None:
                self._drainer.cancel()
        if lost:
            log.error("%d jobs the broker never took are lost with this worker", lost)
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _keep(self, kept: _Kept) -> None:
        """Add to the kept jobs (the lock held), and start the loop's tries if none is under way."""
        self._kept.append(kept)
        if self._drainer is None:
            self._drainer = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)

    async def _drain(self) -> None:
        delay = REPUBLISH_DELAY
        while True:
            await asyncio.sleep(delay)
            if not await self._loop.run_in_executor(self._thread, self._publish_kept):
                return
            delay = min(2 * delay, REPUBLISH_DELAY_MAX)

    def _publish_kept(self) -> bool:
        """Publish the kept jobs in order until the broker refuses one, dropping the expired; whether some
        are still kept (if not, the drain ends here, under the lock, so the next keep starts another)."""
        with self._lock:
            batch, self._kept = self._kept, []
        left: list[_Kept] = []
        for kept in batch:
            if kept.expires_at <= time.time():
                log.warning("%s: expired while the broker could not take it; dropped", kept.what)
            elif left:
                left.append(kept)
            else:
                try:
                    kept.publish()
                except PUBLISH_ERRORS:
                    left.append(kept)
                else:
                    log.info("%s: published, the broker taking jobs again", kept.what)
        with self._lock:
            self._kept[:0] = left
            if not self._kept:
                self._drainer = None
            return bool(self._kept)


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
