"""Refuse new sends while Redis is nearly full, so the sends already accepted can still be delivered.

With ``maxmemory-policy noeviction`` (no OTP record may silently disappear) a full Redis refuses every
write: the delivery progress of accepted OTPs, and the broker's own bookkeeping, where a job the worker
has just taken off the queue is lost and the worker stops. So sends and resends are refused (503
``SERVICE_UNAVAILABLE``) once Redis uses more than ``CEILING`` of its ``maxmemory``; verification and
reports go on. Redis is asked at every send: a reading kept even half a second let a burst of sends
through past the limit.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from dispatcher.errors import ServiceUnavailable
from dispatcher.store import redis_errors

CEILING = 0.9


async def ensure_room(redis: aioredis.Redis) -> None:
    """``ServiceUnavailable`` while Redis uses more than ``CEILING`` of its ``maxmemory``."""
    async with redis_errors():
        memory = await redis.info("memory")
    limit = int(memory.get("maxmemory", 0))
    used = int(memory["used_memory"]) - int(memory.get("mem_not_counted_for_evict", 0))
    if limit and used > limit * CEILING:
        raise ServiceUnavailable("The OTP store (Redis) is nearly full; no new sends until it has room.")
