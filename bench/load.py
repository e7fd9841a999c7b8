"""The load generator: send-otp (and verify-otp) requests against the API, from processes of its own.

Each generator process runs one aiohttp client on its own event loop, so the load never competes with
the harness's bookkeeping, and reports its own CPU time. Two shapes:

- closed loop (``rate == 0``): ``concurrency`` requests at once, as fast as the stack answers; with
  ``max_backlog`` it holds back while more than that many accepted sends wait for their vendor call
  (read from the sandbox's call counter), so the rate measured is one the stack sustains;
- open loop (``rate > 0``): sends started at a fixed rate whatever the answers, for latency.

Both stop after ``max_requests`` sends or ``max_seconds``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import aiohttp

from bench.stack import VENDOR, VENDOR_SEND
from config.heap import freeze_startup_objects

SEND_PATH = "/verify/v1/otp/send-otp"
VERIFY_PATH = "/verify/v1/otp/verify-otp"
BACKLOG_POLL = 0.1
INBOX_POLL = 0.05
INBOX_TIMEOUT = 10.0
WRONG_CODE = "000000"
NUMBERS_PER_PROCESS = 10_000_000
MOBILE_RANGES = ("60", "61", "62", "64", "65", "66", "67", "68")
"""French mobile ranges that libphonenumber holds valid: one per load process, 10^7 numbers each."""
MAX_OPEN_CONNECTIONS = 1000


@dataclass(frozen=True)
class LoadPlan:
    api_url: str
    sandbox_url: str
    token: str
    max_requests: int
    max_seconds: float
    concurrency: int = 64
    rate: float = 0.0
    """Sends per second (open loop); 0 for a closed loop."""
    max_backlog: int = 0
    """Closed loop: hold back while more accepted sends than this await their vendor call (0: never)."""
    verify_after: float = 0.0
    """If > 0, each OTP is verified this many seconds after it was accepted: the code read from the sandbox
    inbox for even sends, a wrong code for odd ones."""
    share: int = 1
    """How many generator processes share this load (each runs its part)."""
    index: int = 0


@dataclass
class LoadResult:
    sent: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    send_ms: list[float] = field(default_factory=list)
    verify_ms: dict[str, list[float]] = field(default_factory=lambda: {"right": [], "wrong": []})
    verify_status: dict[str, int] = field(default_factory=dict)
    otp_ids: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    max_lag_ms: float = 0.0
    """Open loop: how late the generator started a send, at worst (high means it was short of CPU)."""

    def merge(self, other: LoadResult) -> None:
        self.sent += other.sent
        for status, count in other.refused.items():
            self.refused[status] = self.refused.get(status, 0) + count
        self.send_ms += other.send_ms
        for kind, values in other.verify_ms.items():
            self.verify_ms[kind] += values
        for status, count in other.verify_status.items():
            self.verify_status[status] = self.verify_status.get(status, 0) + count
        self.otp_ids += other.otp_ids
        self.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        self.cpu_seconds += other.cpu_seconds
        self.max_lag_ms = max(self.max_lag_ms, other.max_lag_ms)


async def run_load(plan: LoadPlan, processes: int) -> LoadResult:
    """Run ``plan`` split over ``processes`` generator processes; their results merged."""
    parts = [
        replace(
            plan,
            max_requests=plan.max_requests // processes + (index < plan.max_requests % processes),
            rate=plan.rate / processes,
            concurrency=max(1, plan.concurrency // processes),
            share=processes,
            index=index,
        )
        for index in range(processes)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = await asyncio.gather(*(loop.run_in_executor(pool, generate, part) for part in parts))
    merged = LoadResult()
    for result in results:
        merged.merge(result)
    return merged


def generate(plan: LoadPlan) -> LoadResult:
    """One generator process's part of the load (the entry point of the process)."""
    freeze_startup_objects()  # a full collection here paused the generator for up to 300 ms under load
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    result = asyncio.run(_Generator(plan).run())
    end = resource.getrusage(resource.RUSAGE_SELF)
    result.wall_seconds = time.monotonic() - started
    result.cpu_seconds = end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime
    return result


class _Generator:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.result = LoadResult()
        self.headers = {"Authorization": f"Bearer {plan.token}"}
        self.delivered = 0
        self.room = asyncio.Event()
        """Set while the backlog is within bounds (closed loop with ``max_backlog``)."""
        self.session: aiohttp.ClientSession

    async def run(self) -> LoadResult:
        connector = aiohttp.TCPConnector(limit=MAX_OPEN_CONNECTIONS if self.plan.rate else self.plan.concurrency)
        async with aiohttp.ClientSession(connector=connector) as self.session:
            if self.plan.rate:
                await self._open_loop()
            else:
                await self._closed_loop()
        return self.result

    async def _closed_loop(self) -> None:
        deadline = time.monotonic() + self.plan.max_seconds
        counter = iter(range(self.plan.max_requests))
        watcher = asyncio.create_task(self._watch_deliveries()) if self.plan.max_backlog else None

        async def sender() -> None:
            for number in counter:
                if self._backlog() > self.plan.max_backlog:
                    self.room.clear()
                    try:
                        await asyncio.wait_for(self.room.wait(), max(0.0, deadline - time.monotonic()))
                    except TimeoutError:
                        return
                if time.monotonic() > deadline:
                    return
                await self._one(number)

        try:
            await asyncio.gather(*(sender() for _ in range(self.plan.concurrency)))
        finally:
            if watcher is not None:
                watcher.cancel()

    def _backlog(self) -> int:
        if not self.plan.max_backlog:
            return 0
        return self.result.sent * self.plan.share - self.delivered

    async def _watch_deliveries(self) -> None:
        while True:
            async with self.session.get(f"{self.plan.sandbox_url}/_sandbox/calls") as response:
                calls: dict[str, dict[str, int]] = await response.json()
            self.delivered = calls.get(VENDOR, {}).get(VENDOR_SEND, 0)
            if self._backlog() <= self.plan.max_backlog:
                self.room.set()
            await asyncio.sleep(BACKLOG_POLL)

    async def _open_loop(self) -> None:
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        for number in range(self.plan.max_requests):
            due = started + number / self.plan.rate
            if due - started > self.plan.max_seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.result.max_lag_ms = max(self.result.max_lag_ms, -delay * 1000)
            task = asyncio.create_task(self._one(number))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)

    async def _one(self, number: int) -> None:
        recipient = f"+33{MOBILE_RANGES[self.plan.index]}{number % NUMBERS_PER_PROCESS:07d}"
        begun = time.perf_counter()
        body = {"recipient": recipient, "content": "Your code is {}"}
        async with self.session.post(self.plan.api_url + SEND_PATH, json=body, headers=self.headers) as response:
            answer = await response.json()
            status = response.status
        self.result.send_ms.append((time.perf_counter() - begun) * 1000)
        if status != 200:
            self.result.refused[str(status)] = self.result.refused.get(str(status), 0) + 1
            return
        self.result.sent += 1
        otp_id = str(answer["otp_id"])
        self.result.otp_ids.append(otp_id)
        if self.plan.verify_after:
            await asyncio.sleep(self.plan.verify_after)
            await self._verify(otp_id, recipient, right=number % 2 == 0)

    async def _verify(self, otp_id: str, recipient: str, right: bool) -> None:
        code = await self._code(recipient) if right else WRONG_CODE
        if code is None:
            self.result.verify_status["NO_CODE"] = self.result.verify_status.get("NO_CODE", 0) + 1
            return
        begun = time.perf_counter()
        body = {"otp_id": otp_id, "otp_code": code}
        async with self.session.post(self.plan.api_url + VERIFY_PATH, json=body, headers=self.headers) as response:
            answer = await response.json()
        self.result.verify_ms["right" if right else "wrong"].append((time.perf_counter() - begun) * 1000)
        status = str(answer.get("status", response.status))
        self.result.verify_status[status] = self.result.verify_status.get(status, 0) + 1

    async def _code(self, recipient: str) -> str | None:
        """The code the sandbox delivered to ``recipient``, once it arrived."""
        deadline = time.monotonic() + INBOX_TIMEOUT
        while time.monotonic() < deadline:
            async with self.session.get(f"{self.plan.sandbox_url}/inbox/{recipient}") as response:
                if response.status == 200:
                    return str((await response.json())["code"])
            await asyncio.sleep(INBOX_POLL)
        return None
