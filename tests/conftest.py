"""The real parts the tests run against, started once per session.

A private Redis (the embedded one; ``OTP_REDIS_URL`` in the environment points the tests at another),
the sandbox vendors, one Celery worker and the API, each a subprocess started through the
``otp-dispatcher`` command exactly as ``make dev`` starts it, on free ports of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis

from dispatcher.constants import SEND_QUEUE, breaker_key, lease_key
from tests.support import POSTBACK_SECRET, Api, Stack, listening, start_process, stop
from workers.devstack import sandbox_providers
from workers.embedded_redis import EmbeddedRedis, free_port

QUIET_TIMEOUT = 30.0

# Vendor settings small enough that retries and failovers happen in milliseconds.
FAST_RETRY = {"timeout": 1.0, "attempts": 2, "retry_delay": 0.05, "retry_delay_max": 0.1}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("OTP_REDIS_URL"):
        yield os.environ["OTP_REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("logs")
    sandbox_port, api_port, metrics_port = free_port(), free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    token = secrets.token_urlsafe(16)
    providers = [provider | FAST_RETRY for provider in sandbox_providers(sandbox_url)]
    env = {
        **os.environ,
        "OTP_REDIS_URL": redis_url,
        "OTP_API_TOKENS": f"{token},second-token",
        "OTP_SECRET_KEY": secrets.token_urlsafe(32),
        "OTP_API_PORT": str(api_port),
        "OTP_SANDBOX_PORT": str(sandbox_port),
        "OTP_PROVIDERS": json.dumps(providers),
        "OTP_ROUTES": json.dumps({"+91": ["messagecentral"]}),
        # The suite sends far more than a real number would get; tests/dispatcher/test_guards.py runs its own limits.
        "OTP_LIMITS__RECIPIENT_SENDS": "1000",
        "OTP_LIMITS__PREFIX_SENDS": "100000",
        "OTP_POSTBACK_SECRET": POSTBACK_SECRET,
        "OTP_WORKER_METRICS_PORT": str(metrics_port),
        "OTP_POSTBACK_RETRY_DELAY": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    children = [
        start_process("sandbox", env, logs, ready=lambda _: listening(sandbox_port)),
        start_process("api", env, logs, ready=lambda _: listening(api_port)),
        start_process("worker", env, logs, ready=lambda log: "ready." in log, extra=["--", "--concurrency=16"]),
    ]
    try:
        yield Stack(redis_url, sandbox_url, f"http://127.0.0.1:{api_port}", token, env, logs)
    finally:
        for child in children:
            stop(child)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def api(stack: Stack, redis_client: redis.Redis) -> AsyncIterator[Api]:
    """A client of the stack, once earlier tests' deliveries are done, with the sandbox's faults and
    counters and every vendor's circuit breaker reset."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    while redis_client.llen(SEND_QUEUE) or redis_client.keys(lease_key("*")):
        assert time.monotonic() < deadline, "the stack is still delivering an earlier test's sends"
        await asyncio.sleep(0.02)
    breakers = redis_client.keys(breaker_key("*"))
    if breakers:
        redis_client.delete(*breakers)
    async with aiohttp.ClientSession() as session:
        client = Api(stack, session, redis_client)
        await client.reset_sandbox()
        yield client
