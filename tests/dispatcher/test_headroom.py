"""New sends stop while Redis is nearly full (a Redis of the test's own, whose maxmemory it sets)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dispatcher.errors import ServiceUnavailable
from dispatcher.headroom import CEILING, ensure_room
from workers.embedded_redis import EmbeddedRedis


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    with EmbeddedRedis(tmp_path) as server:
        client = aioredis.Redis.from_url(server.url)
        yield client
        await client.aclose()


async def test_a_redis_without_maxmemory_always_has_room(own_redis: aioredis.Redis) -> None:
    await ensure_room(own_redis)


async def test_a_redis_used_beyond_the_ceiling_of_its_maxmemory_takes_no_more_sends(own_redis: aioredis.Redis) -> None:
    used = int((await own_redis.info("memory"))["used_memory"])
    await own_redis.config_set("maxmemory", int(used / CEILING) - 1024)

    with pytest.raises(ServiceUnavailable):
        await ensure_room(own_redis)


async def test_a_redis_below_the_ceiling_takes_sends(own_redis: aioredis.Redis) -> None:
    used = int((await own_redis.info("memory"))["used_memory"])
    await own_redis.config_set("maxmemory", int(used / CEILING) + 256 * 1024)

    await ensure_room(own_redis)
