"""Helpers the tests share: the running stack's addresses, a D7 client of it, waiting on conditions."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from devtools import processes
from devtools.devstack import sandbox_providers
from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port, listening
from devtools.sandbox_receipts import point_octopush_receipts
from dispatcher.constants import SEND_QUEUE, breaker_key, lease_key
from dispatcher.jobs import celery_config

START_TIMEOUT = 30.0
QUIET_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POSTBACK_SECRET = "postback-test-secret"
WAIT_TIMEOUT = 15.0
CODE_VENDORS = ("d7", "octopush", "messagecentral")
FLOWER_PASSWORD = "flower-test-password"
FLOWER_AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{FLOWER_PASSWORD}".encode()).decode()}
TEST_SWEEP_INTERVAL = "0.5"
"""Seconds between sweeps for lost jobs in the test stacks (2 by default)."""
FAST_RETRY = {"timeout": 1.0, "attempts": 2, "retry_delay": 0.05, "retry_delay_max": 0.1}
"""Vendor settings small enough that retries and failovers happen in milliseconds."""


@dataclass
class Stack:
    """Addresses and credentials of the running stack."""

    redis_url: str
    sandbox_url: str
    api_url: str
    token: str
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    """The sandbox, API and worker subprocesses, by command."""
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(
            redis_url=self.redis_url,
            api_tokens=self.env["OTP_API_TOKENS"],
            secret_key=self.env["OTP_SECRET_KEY"],
            providers=json.loads(self.env["OTP_PROVIDERS"]),
            redis=json.loads(self.env.get("OTP_REDIS", "{}")),
        )

    def point_octopush_receipts(self) -> None:
        """Octopush takes its receipts' callback URL per account: set the sandbox account's to this API's route."""
        point_octopush_receipts(self.sandbox_url, self.env["OTP_CALLBACK_URL"], self.env["OTP_SECRET_KEY"])


class Api:
    """A D7 client of the stack's API, plus the sandbox's inbox and control endpoints."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession, redis: redis.Redis) -> None:
        self.stack = stack
        self.session = session
        self.redis = redis
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

    async def delivered(self, otp_id: str, count: int = 1, within: float = WAIT_TIMEOUT) -> dict[str, Any]:
        """The report once ``count`` sends of the OTP were delivered (or it stopped being OPEN), and
        no worker is busy with it any more (its lease is released)."""

        async def done() -> dict[str, Any] | None:
            report = await self.report(otp_id)  # read before the lease: a run that ends after is seen next time
            sends = {a["send_number"] for a in report["attempts"] if a["outcome"] == "DELIVERED"}
            finished = len(sends) >= count or report["status"] != "OPEN"
            return report if finished and not self.redis.exists(lease_key(otp_id)) else None

        return await wait_for(done, within)

    async def receipted(self, otp_id: str) -> dict[str, Any]:
        """The report once the OTP's latest delivered attempt has a receipt that says something."""

        async def said() -> dict[str, Any] | None:
            report = await self.report(otp_id)
            delivered = [a for a in report["attempts"] if a["outcome"] == "DELIVERED"]
            return report if delivered and delivered[-1]["receipt"] != "NONE" else None

        return await wait_for(said)

    async def inbox(self, recipient: str) -> dict[str, Any]:
        async with self.session.get(f"{self.stack.sandbox_url}/inbox/{recipient}") as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def messages(self, recipient: str) -> list[dict[str, Any]]:
        """Every message the number received, oldest first."""
        async with self.session.get(f"{self.stack.sandbox_url}/inbox/{recipient}/all") as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["messages"])

    async def fault(self, vendor: str, **faults: Any) -> None:
        async with self.session.put(f"{self.stack.sandbox_url}/_sandbox/faults/{vendor}", json=faults) as response:
            assert response.status == 200, await response.text()

    async def only_console(self) -> None:
        """Every vendor out of credit, so the console provider delivers a code the dispatcher generated."""
        for vendor in CODE_VENDORS:
            await self.fault(vendor, no_credit=True)

    async def console_otp(self, **fields: object) -> tuple[str, str]:
        """An OTP delivered by the console provider (vendors out of credit), so its code is checked
        locally; with the code the phone got."""
        await self.only_console()
        recipient = random_number()
        otp_id = await self.send(recipient=recipient, **fields)
        report = await self.delivered(otp_id)
        assert report["delivered_by"] == "console", report
        return otp_id, (await self.inbox(recipient))["code"]

    async def d7_otp(self) -> tuple[str, str]:
        """An OTP delivered by D7, which generated its code and checks it; with the code the phone got."""
        recipient = random_number()
        otp_id = await self.send(recipient=recipient)
        report = await self.delivered(otp_id)
        assert report["delivered_by"] == "d7", report
        return otp_id, (await self.inbox(recipient))["code"]

    async def calls(self) -> dict[str, dict[str, int]]:
        async with self.session.get(f"{self.stack.sandbox_url}/_sandbox/calls") as response:
            return dict(await response.json())

    async def reset_sandbox(self) -> None:
        async with self.session.post(f"{self.stack.sandbox_url}/_sandbox/reset") as response:
            assert response.status == 200, await response.text()


@asynccontextmanager
async def quiet_api(stack: Stack, redis_client: redis.Redis) -> AsyncIterator[Api]:
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


def own_database(redis_url: str) -> str:
    """``redis_url`` on the next database number: in-process tests keep their keys (jobs, leases, breakers)
    there, out of the session's stack's sight (it waits for its own database to be quiet between tests)."""
    parts = urlsplit(redis_url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database + 1) % 16}"))


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a Prometheus endpoint serves, by name and labels."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def random_number() -> str:
    """A fresh French mobile number, so tests never read each other's inbox."""
    return "+3361" + "".join(secrets.choice("0123456789") for _ in range(7))


def number(prefix: str, digits: int = 6) -> str:
    """A fresh number of ``prefix`` and ``digits`` random digits (the caller picks a range libphonenumber accepts:
    ``+33622`` and 6 digits, ``+9198`` and 8)."""
    return prefix + "".join(secrets.choice("0123456789") for _ in range(digits))


async def delivered_to_phone(api: Api, recipient: str, within: float) -> dict[str, Any]:
    """The latest message the phone received, once it has one."""

    async def arrived() -> dict[str, Any] | None:
        messages = await api.messages(recipient)
        return messages[-1] if messages else None

    return dict(await wait_for(arrived, within))


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


def start_process(
    command: str,
    env: dict[str, str],
    logs: Path,
    ready: Callable[[str], bool],
    extra: list[str] | None = None,
    name: str | None = None,
) -> subprocess.Popen[bytes]:
    """``otp-dispatcher <command>`` in a subprocess logging to ``<logs>/<name>.log``, once ``ready(log)``
    (as the benchmark starts its stack)."""
    args = ["-m", "cli", command, *(extra or [])]
    return processes.start_process(args, env, logs / f"{name or command}.log", ready)


@asynccontextmanager
async def stack_api(stack: Stack) -> AsyncIterator[Api]:
    """``quiet_api`` with a Redis client of its own on the stack's Redis (closed on exit)."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        async with quiet_api(stack, client) as api:
            yield api
    finally:
        client.close()


@contextmanager
def own_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, chain: Sequence[str] = (), **overrides: str
) -> Iterator[Stack]:
    """``running_stack`` on an embedded Redis of its own, for a module whose settings differ from the session's
    stack (``overrides``); its data and logs in ``<name>-redis`` and ``<name>-logs``."""
    with (
        EmbeddedRedis(tmp_path_factory.mktemp(f"{name}-redis")) as server,
        running_stack(server.url, tmp_path_factory.mktemp(f"{name}-logs"), chain, **overrides) as started,
    ):
        yield started


@contextmanager
def running_stack(redis_url: str, logs: Path, chain: Sequence[str] = (), **overrides: str) -> Iterator[Stack]:
    """The sandbox, the API and one worker (16 threads) on free ports of 127.0.0.1, using the Redis at
    ``redis_url``, every vendor of the dev chain (or those named in ``chain``) with ``FAST_RETRY``; ``overrides``
    are extra ``OTP_*`` variables. Every process is stopped on exit."""
    sandbox_port, api_port, metrics_port = free_port(), free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    token = secrets.token_urlsafe(16)
    providers = [
        provider | FAST_RETRY for provider in sandbox_providers(sandbox_url) if not chain or provider["name"] in chain
    ]
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
        "OTP_CALLBACK_URL": f"http://127.0.0.1:{api_port}",
        "OTP_WORKER_METRICS_PORT": str(metrics_port),
        "OTP_POSTBACK_RETRY_DELAY": "0.05",
        "OTP_SWEEP_INTERVAL": TEST_SWEEP_INTERVAL,
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }
    stack = Stack(redis_url, sandbox_url, f"http://127.0.0.1:{api_port}", token, env, logs)
    try:
        stack.processes["sandbox"] = start_process("sandbox", env, logs, ready=lambda _: listening(sandbox_port))
        stack.processes["api"] = start_process("api", env, logs, ready=lambda _: listening(api_port))
        start_worker(stack)
        yield stack
    finally:
        for child in stack.processes.values():
            stop(child)


def start_worker(stack: Stack) -> subprocess.Popen[bytes]:
    """The stack's worker (16 threads), started anew if it was stopped; it logs to ``worker.log``."""
    worker = start_process(
        "worker", stack.env, stack.logs, ready=lambda log: "ready." in log, extra=["--", "--concurrency=16"]
    )
    stack.processes["worker"] = worker
    return worker


def extra_worker(
    stack: Stack, node: str, env: dict[str, str] | None = None, concurrency: int = 8
) -> subprocess.Popen[bytes]:
    """Another worker beside the session's, named ``<node>@<host>``, logging to ``<node>-worker.log``;
    ``env`` overrides the stack's settings for it alone."""
    return start_process(
        "worker",
        stack.env | {"OTP_WORKER_METRICS_PORT": "0"} | (env or {}),  # the session's worker has the port
        stack.logs,
        ready=lambda log: "ready." in log,
        extra=["--", f"--concurrency={concurrency}", "-n", f"{node}@%h"],
        name=f"{node}-worker",
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, killing it if it does not exit within ``STOP_TIMEOUT`` seconds."""
    processes.stop_processes([process], STOP_TIMEOUT)


def control_app(stack: Stack) -> Celery:
    """A Celery app for remote control of the stack's workers."""
    app = Celery(set_as_current=False)
    app.conf.update(celery_config(stack.settings))
    return app


def consume_only(app: Celery, prefix: str) -> list[str]:
    """Let only the workers whose node name starts with ``prefix`` consume the send queue; returns
    every worker's name. The session's worker (``otp@``) always answers: a busy one is pinged again."""
    deadline = time.monotonic() + START_TIMEOUT
    names: list[str] = []
    while not any(name.startswith("otp@") for name in names):
        assert time.monotonic() < deadline, "the session's worker does not answer pings"
        names = sorted(name for reply in app.control.ping(timeout=2.0) for name in reply)
    for name in names:
        if name.startswith(prefix):
            app.control.add_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)
        else:
            app.control.cancel_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)
    return names
