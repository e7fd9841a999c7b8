"""Connecting to the store's Redis, and what every group of store operations shares.

Redis failures surface as ``ServiceUnavailable`` (``redis_errors``), so callers never see a Redis error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from dispatcher.errors import ServiceUnavailable
from dispatcher.sealing import Sealer

MAX_REDIS_CONNECTIONS = 256
"""Connections one process's pool opens at most."""
DUE_GRACE = 2.0
"""Seconds a queued job has to be taken by a worker before the sweeper queues it again (by default; the
dispatcher's processes use ``Settings.sweep_interval``)."""
POSTBACK_GRACE = 15.0
"""Seconds an owed postback's job has to be done (its POST takes at most 10) before it is queued again."""


def connect(url: str, timeout: float) -> aioredis.Redis:
    """A pooled client whose every command gives up after ``timeout`` seconds, so callers never hang.

    At most ``MAX_REDIS_CONNECTIONS`` connections; a command beyond them waits (within ``timeout``)
    for a free one rather than failing, so a burst of concurrent runs queues instead of erroring. A
    command whose pooled connection turns out closed (Redis restarted since it was opened) is sent once
    more on a new connection, so the first requests after Redis returns do not fail; a timeout is not
    retried.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        health_check_interval=30,
        max_connections=MAX_REDIS_CONNECTIONS,
        timeout=timeout,
    )
    return aioredis.Redis.from_pool(pool)


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turns any Redis failure inside it into ``ServiceUnavailable``."""
    try:
        yield
    except RedisError as exc:
        raise ServiceUnavailable("The OTP store (Redis) is not answering; try again shortly.") from exc


class Connected:
    """The base of each group of operations (``producer``, ``verification``, ``runs``, ``sweeps``): one Redis client,
    the sealer of specs and the grace period records outlive their codes by. Each group loads its own
    scripts in ``__init__`` and passes these on, so ``OtpStore`` can be all three."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        self._redis = redis
        self._sealer = sealer
        self._grace = grace
        self._due_grace = due_grace
        """Seconds a queued job has to be taken by a worker before the sweeper queues it again."""

    async def close(self) -> None:
        await self._redis.aclose()
