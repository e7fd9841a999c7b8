"""The real parts the tests run against, started once per session.

A private Redis (the embedded one; ``OTP_REDIS_URL`` in the environment points the tests at another),
the sandbox vendors, one Celery worker and the API, each a subprocess started through the
``otp-dispatcher`` command exactly as ``make dev`` starts it, on free ports of 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from devtools.embedded_redis import EmbeddedRedis
from tests.support import Api, Stack, quiet_api, running_stack


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("OTP_REDIS_URL"):
        yield os.environ["OTP_REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(redis_url, tmp_path_factory.mktemp("logs")) as started:
        yield started


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def api(stack: Stack, redis_client: redis.Redis) -> AsyncIterator[Api]:
    async with quiet_api(stack, redis_client) as client:
        yield client
