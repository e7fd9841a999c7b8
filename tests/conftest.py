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
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from config import Settings
from workers.embedded_redis import EmbeddedRedis, free_port
from workers.sandbox import SandboxCredentials

START_TIMEOUT = 30.0
WAIT_TIMEOUT = 15.0

# Vendor settings small enough that retries and failovers happen in milliseconds.
FAST_RETRY = {"timeout": 1.0, "attempts": 2, "retry_delay": 0.05, "retry_delay_max": 0.1}


@dataclass
class Stack:
    """Addresses and credentials of the running stack."""

    redis_url: str
    sandbox_url: str
    api_url: str
    token: str
    env: dict[str, str]
    logs: Path
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(
            redis_url=self.redis_url,
            api_tokens=self.env["OTP_API_TOKENS"],
            secret_key=self.env["OTP_SECRET_KEY"],
            providers=json.loads(self.env["OTP_PROVIDERS"]),
        )


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
    sandbox_port, api_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    token = secrets.token_urlsafe(16)
    providers = [
        {"name": "d7", "kind": "d7", "base_url": sandbox_url, "api_token": SandboxCredentials().d7_token, **FAST_RETRY},
        {"name": "console", "kind": "console", "base_url": sandbox_url, **FAST_RETRY},
    ]
    env = {
        **os.environ,
        "OTP_REDIS_URL": redis_url,
        "OTP_API_TOKENS": f"{token},second-token",
        "OTP_SECRET_KEY": secrets.token_urlsafe(32),
        "OTP_API_PORT": str(api_port),
        "OTP_SANDBOX_PORT": str(sandbox_port),
        "OTP_PROVIDERS": json.dumps(providers),
        "PYTHONUNBUFFERED": "1",
    }
    children = [
        _start("sandbox", env, logs, ready=lambda _: _listening(sandbox_port)),
        _start("api", env, logs, ready=lambda _: _listening(api_port)),
        _start("worker", env, logs, ready=lambda log: "ready." in log, extra=["--", "--concurrency=16"]),
    ]
    try:
        yield Stack(redis_url, sandbox_url, f"http://127.0.0.1:{api_port}", token, env, logs)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class Api:
    """A D7 client of the stack's API, plus the sandbox's inbox and control endpoints."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session
        self.headers = {"Authorization": f"Bearer {stack.token}"}

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.post(
            self.stack.api_url + path, json=body, headers=self.headers if headers is None else headers
        ) as response:
            return response.status, await response.json()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.get(
            self.stack.api_url + path, headers=self.headers if headers is None else headers
        ) as response:
            return response.status, await response.json()

    async def send(self, **fields: Any) -> str:
        body = {"recipient": random_number(), "content": "Your code is {}", **fields}
        status, answer = await self.post("/verify/v1/otp/send-otp", body)
        assert status == 200, answer
        return str(answer["otp_id"])

    async def verify(self, otp_id: str, code: str) -> str:
        status, answer = await self.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": code})
        assert status == 200, answer
        return str(answer["status"])

    async def report(self, otp_id: str) -> dict[str, Any]:
        status, answer = await self.get(f"/verify/v1/report/{otp_id}")
        assert status == 200, answer
        return dict(answer)

    async def delivered(self, otp_id: str, count: int = 1) -> dict[str, Any]:
        """The report once ``count`` sends of the OTP were delivered (or it stopped being OPEN)."""

        async def done() -> dict[str, Any] | None:
            report = await self.report(otp_id)
            sends = {a["send_number"] for a in report["attempts"] if a["outcome"] == "DELIVERED"}
            return report if len(sends) >= count or report["status"] != "OPEN" else None

        return await wait_for(done)

    async def inbox(self, recipient: str) -> dict[str, Any]:
        async with self.session.get(f"{self.stack.sandbox_url}/inbox/{recipient}") as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def fault(self, vendor: str, **faults: Any) -> None:
        async with self.session.put(f"{self.stack.sandbox_url}/_sandbox/faults/{vendor}", json=faults) as response:
            assert response.status == 200, await response.text()

    async def calls(self) -> dict[str, dict[str, int]]:
        async with self.session.get(f"{self.stack.sandbox_url}/_sandbox/calls") as response:
            return dict(await response.json())

    async def reset_sandbox(self) -> None:
        async with self.session.post(f"{self.stack.sandbox_url}/_sandbox/reset") as response:
            assert response.status == 200, await response.text()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        client = Api(stack, session)
        await client.reset_sandbox()
        yield client


def random_number() -> str:
    """A fresh French mobile number, so tests never read each other's inbox."""
    return "+336" + "".join(secrets.choice("0123456789") for _ in range(8))


async def wait_for(probe: Callable[[], Any], within: float = WAIT_TIMEOUT) -> Any:
    """Poll ``probe`` until it returns something other than None, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


def _start(
    command: str, env: dict[str, str], logs: Path, ready: Callable[[str], bool], extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    log_path = logs / f"{command}.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", command, *(extra or [])], env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not ready(log_path.read_text(errors="replace")):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise RuntimeError(f"{command} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    return child


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
