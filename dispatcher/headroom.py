"""Refuse new sends while Redis is nearly full, so the sends already accepted can still be delivered.

With ``maxmemory-policy noeviction`` (no OTP record may silently disappear) a full Redis refuses every
write: the delivery progress of accepted OTPs, and the broker's own bookkeeping, where a job the worker
has just taken off the queue is lost and the worker stops. So sends and resends are refused (503
``SERVICE_UNAVAILABLE``) once Redis uses more than ``CEILING`` of its ``maxmemory``; verification and
reports go on. The reading is refreshed at most every ``REFRESH_SECONDS``.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from dispatcher.errors import ServiceUnavailable
from dispatcher.store import redis_errors

CEILING = 0.9
REFRESH_SECONDS = 0.5


class MemoryHeadroom:
    """Whether Redis has room for more sends; one per Redis client."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._full = False
        self._read_at = float("-inf")

    async def check(self) -> None:
        """``ServiceUnavailable`` while Redis uses more than ``CEILING`` of its ``maxmemory``."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_SECONDS:
            async with redis_errors():
                memory = await self._redis.info("memory")
            limit = int(memory.get("maxmemory", 0))
            used = int(memory["used_memory"]) - int(memory.get("mem_not_counted_for_evict", 0))
            self._full, self._read_at = bool(limit) and used > limit * CEILING, now
        if self._full:
            raise ServiceUnavailable("The OTP store (Redis) is nearly full; no new sends until it has room.")
