"""A steady stream of sends while workers are frozen and killed, Redis crashes and replays its append-only file
and a worker is stopped: every accepted OTP ends delivered or failed with a reason, no vendor sends an OTP more
often than its attempt log accounts for, and every delivered code verifies.

The module runs its own stack (an embedded Redis with its append-only file, the sandbox, the API and two workers,
each replaced when the trouble ends it) so it can crash that Redis without disturbing the session's. The trouble
comes in a random order at random moments, drawn from a seeded generator: the seed is in every assertion
message, and ``CHAOS_SEED=<seed>`` replays the same draw (the machine's timing still varies).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from devtools.embedded_redis import EmbeddedRedis
from tests.support import Api, Stack, extra_worker, quiet_api, running_stack, stop

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CHAOS_SEED") or secrets.randbits(32))
RATE = 20.0
"""Sends per second, each at its own moment whatever the answers before it."""
STREAM_AT_LEAST = 30.0
"""Seconds the stream lasts at least; it goes on until the trouble is over and ``TAIL`` more."""
TROUBLE_FROM = 1.5
"""Seconds into the stream before the first trouble."""
TAIL = 1.5
TROUBLE = ("freeze_then_kill_a_worker", "freeze_then_kill_a_worker", "crash_redis", "stop_a_worker")
VISIBILITY_TIMEOUT = "10"
"""Just above the delivery lease of the stack's chain (four vendors of 1 s, plus 5 s): a dead worker's jobs are
handed out again, and its runs taken for dead, within seconds."""
WORKER_THREADS = 16
D7_LATENCY_MS = 300
"""D7 takes this long before it sends, so vendor calls are in flight whenever trouble strikes."""
ANSWER_TIMEOUT = 10.0
REDIS_BACK_WITHIN = 3.0
"""Seconds after Redis is back within which the API may still answer 503 (its connections reopen)."""
AOF_LOSS_WINDOW = 2.0
"""Redis writes its append-only file before answering, but with ``appendfsync everysec`` it may put the write
off for up to two seconds while an fsync is slow: sends accepted that long before a crash may be lost."""
RECOVERY = 60.0
"""Seconds within which every accepted OTP must be final once the stream is over."""
CHECKS_AT_ONCE = 16
SEND_PATH = "/verify/v1/otp/send-otp"
MAY_HAVE_REACHED_A_VENDOR = ("DELIVERED", "OUTCOME_UNKNOWN")
"""Attempt outcomes whose request may have reached the vendor (OUTCOME_UNKNOWN includes WORKER_LOST)."""


@dataclass
class OwnStack:
    stack: Stack
    redis: EmbeddedRedis


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("chaos-redis"))
    server.start()
    overrides = {"OTP_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT, "OTP_POSTBACK_RETRY_DELAY_MAX": "1"}
    try:
        with running_stack(server.url, tmp_path_factory.mktemp("chaos-logs"), **overrides) as stack:
            yield OwnStack(stack, server)
    finally:
        server.stop()


@pytest.fixture
async def api(own: OwnStack) -> AsyncIterator[Api]:
    client = redis.Redis.from_url(own.stack.redis_url, decode_responses=True)
    async with quiet_api(own.stack, client) as api:
        yield api
    client.close()


@dataclass(frozen=True)
class Answer:
    """One send of the stream: when it was asked and answered (monotonic seconds), and the answer."""

    recipient: str
    asked: float
    answered: float
    status: int
    body: Any


@dataclass
class Trouble:
    """Freezes, kills and stops workers (starting a replacement for each) and crashes Redis, at random moments."""

    own: OwnStack
    rng: random.Random
    workers: list[subprocess.Popen[bytes]]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Every worker this started, for the clean-up."""
    outages: list[tuple[float, float]] = field(default_factory=list)
    """(killed, back) of each Redis crash, monotonic seconds."""
    log: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    async def run(self) -> None:
        for kind in self.rng.sample(TROUBLE, len(TROUBLE)):
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))  # a random moment: the scenario's pace
            await getattr(self, kind)()

    async def freeze_then_kill_a_worker(self) -> None:
        """SIGSTOP a worker (what it took from the broker is stuck with it), then SIGKILL it."""
        victim = self.workers.pop(self.rng.randrange(len(self.workers)))
        frozen_for = self.rng.uniform(0.3, 2.0)
        self._say(f"SIGSTOP worker {victim.pid} for {frozen_for:.1f}s, then SIGKILL")
        victim.send_signal(signal.SIGSTOP)
        await asyncio.sleep(frozen_for)
        victim.kill()
        await asyncio.to_thread(victim.wait, 10)
        await self._replace()

    async def stop_a_worker(self) -> None:
        """SIGTERM a worker: it finishes its vendor calls and gives back what it had not started."""
        victim = self.workers.pop(self.rng.randrange(len(self.workers)))
        self._say(f"SIGTERM worker {victim.pid}")
        victim.terminate()
        await asyncio.to_thread(victim.wait, 30)
        await self._replace()

    async def crash_redis(self) -> None:
        """SIGKILL Redis, then start it again from its append-only file on the same port."""
        down_for = self.rng.uniform(0.5, 2.0)
        self._say(f"SIGKILL redis, down for {down_for:.1f}s")
        killed = time.monotonic()
        await asyncio.to_thread(self.own.redis.kill)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.own.redis.start)
        self.outages.append((killed, time.monotonic()))
        self._say("redis back")

    async def _replace(self) -> None:
        node = f"chaos{len(self.started) + 1}"
        worker = await asyncio.to_thread(extra_worker, self.own.stack, node, concurrency=WORKER_THREADS)
        self.started.append(worker)
        self.workers.append(worker)
        self._say(f"worker {worker.pid} ({node}) ready")

    def _say(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.began:5.1f}s {what}")

    def clean_up(self) -> None:
        for worker in self.started:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
            stop(worker)


async def send(api: Api, recipient: str) -> Answer:
    asked = time.monotonic()
    body = {"recipient": recipient, "content": "Your code is {}"}
    try:
        async with api.session.post(
            api.stack.api_url + SEND_PATH,
            json=body,
            headers=api.headers,
            timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT),
        ) as response:
            status, answer = response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        status, answer = 0, repr(exc)
    return Answer(recipient, asked, time.monotonic(), status, answer)


async def stream(api: Api, numbers: Iterator[str], until: asyncio.Future[None]) -> list[Answer]:
    """Sends at ``RATE`` per second, each to a number of its own, for ``STREAM_AT_LEAST`` seconds and until
    ``until`` is done; every answer."""
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    sends: list[asyncio.Task[Answer]] = []
    while loop.time() - began < STREAM_AT_LEAST or not until.done():
        sends.append(asyncio.create_task(send(api, next(numbers))))
        sent += 1
        await asyncio.sleep(max(0.0, began + sent / RATE - loop.time()))
    return list(await asyncio.gather(*sends))


def distinct_numbers(rng: random.Random) -> Iterator[str]:
    """French mobile numbers, each one new."""
    first = rng.randrange(10**7 - 10**5)
    return (f"+3361{first + offset:07d}" for offset in range(10**5))


def refused_outside_an_outage(answers: list[Answer], outages: list[tuple[float, float]]) -> list[Answer]:
    """The answers other than 200, except a 503 SERVICE_UNAVAILABLE to a send asked while Redis was down."""

    def during_an_outage(answer: Answer) -> bool:
        return any(answer.answered >= killed and answer.asked <= back + REDIS_BACK_WITHIN for killed, back in outages)

    def excused(answer: Answer) -> bool:
        unavailable = answer.status == 503 and answer.body["detail"]["code"] == "SERVICE_UNAVAILABLE"
        return unavailable and during_an_outage(answer)

    return [answer for answer in answers if answer.status != 200 and not excused(answer)]


def lost_in_the_crash(answer: Answer, killed: float) -> bool:
    """Whether a send may have lost its record in a Redis crash at ``killed``: asked before it, and answered no
    earlier than the append-only file's window before it (or after it: its job may have gone to the Redis
    that came back)."""
    return answer.asked <= killed and answer.answered >= killed - AOF_LOSS_WINDOW


def final(report: dict[str, Any]) -> bool:
    return report["delivered_by"] is not None or report["status"] == "FAILED"


async def final_reports(api: Api, otp_ids: list[str], why: str) -> dict[str, dict[str, Any] | None]:
    """Each OTP's report once it is final (delivered or FAILED), None for an OTP whose record is gone."""
    limit = asyncio.Semaphore(CHECKS_AT_ONCE)

    async def fetch(otp_id: str) -> tuple[int, Any]:
        async with limit:
            return await api.get(f"/verify/v1/report/{otp_id}")

    reports: dict[str, dict[str, Any] | None] = {}
    pending = list(otp_ids)
    deadline = time.monotonic() + RECOVERY
    while pending:
        answers = await asyncio.gather(*(fetch(otp_id) for otp_id in pending))
        still: dict[str, Any] = {}
        for otp_id, (status, body) in zip(pending, answers, strict=True):
            assert status in (200, 404), f"{why}: report of {otp_id}: {status} {body}"
            if status == 404:
                reports[otp_id] = None
            elif final(body):
                reports[otp_id] = body
            else:
                still[otp_id] = body
        pending = list(still)
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"{why}: {len(pending)} accepted OTPs not final within {RECOVERY}s: {still}")
        await asyncio.sleep(0.2 if pending else 0)
    return reports


def over_sent(report: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """The vendors that sent the OTP's number more messages than the attempts of theirs that may have reached
    them: vendor -> (messages, such attempts)."""
    sent = Counter(message["vendor"] for message in messages)
    accounted = Counter(a["vendor"] for a in report["attempts"] if a["outcome"] in MAY_HAVE_REACHED_A_VENDOR)
    return {vendor: (count, accounted[vendor]) for vendor, count in sent.items() if count > accounted[vendor]}


def delivery_problem(report: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """What is wrong with a final OTP's report and its number's messages, if anything."""
    if report["delivered_by"] is None:
        return None if report["failure_reason"] else "FAILED without a reason"
    delivered = [a["vendor"] for a in report["attempts"] if a["outcome"] == "DELIVERED"]
    if delivered != [report["delivered_by"]]:
        return f"delivered by {report['delivered_by']} but DELIVERED attempts at {delivered}"
    if not messages:
        return "delivered but its number received nothing"
    return None


async def test_a_steady_stream_through_killed_workers_a_redis_crash_and_a_stopped_worker_loses_no_accepted_otp(
    api: Api, own: OwnStack
) -> None:
    rng = random.Random(SEED)
    why = f"seed {SEED} (replay with CHAOS_SEED={SEED})"
    await api.fault("d7", latency_ms=D7_LATENCY_MS)
    second = await asyncio.to_thread(extra_worker, own.stack, "chaos0", concurrency=WORKER_THREADS)
    trouble = Trouble(own, rng, [own.stack.processes["worker"], second], started=[second])
    try:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        async def trouble_then_tail() -> None:
            await asyncio.sleep(TROUBLE_FROM)
            await trouble.run()
            await asyncio.sleep(TAIL)
            done.set_result(None)

        answers, _ = await asyncio.gather(stream(api, distinct_numbers(rng), done), trouble_then_tail())
        why += "; trouble: " + "; ".join(trouble.log)
        refused = refused_outside_an_outage(answers, trouble.outages)
        assert not refused, f"{why}: answers other than 200 or a 503 while Redis was down: {refused[:10]}"

        accepted = {str(a.body["otp_id"]): a for a in answers if a.status == 200}
        reports = await final_reports(api, list(accepted), why)
        gone = [otp_id for otp_id, report in reports.items() if report is None]
        outside_the_window = [
            otp_id
            for otp_id in gone
            if not any(lost_in_the_crash(accepted[otp_id], killed) for killed, _ in trouble.outages)
        ]
        assert not outside_the_window, (
            f"{why}: records lost outside the append-only file's window: {outside_the_window}"
        )

        kept = {otp_id: report for otp_id, report in reports.items() if report is not None}
        messages = dict(
            zip(
                kept,
                await asyncio.gather(*(api.messages(accepted[otp_id].recipient) for otp_id in kept)),
                strict=True,
            )
        )
        problems = {
            otp_id: problem
            for otp_id, report in kept.items()
            if (problem := delivery_problem(report, messages[otp_id])) is not None
        }
        assert not problems, f"{why}: {problems}"
        too_many = {otp_id: extra for otp_id, report in kept.items() if (extra := over_sent(report, messages[otp_id]))}
        assert not too_many, f"{why}: messages beyond the attempt log (messages, attempts): {too_many}"

        delivered = [otp_id for otp_id, report in kept.items() if report["delivered_by"] is not None]
        limit = asyncio.Semaphore(CHECKS_AT_ONCE)

        async def verify(otp_id: str) -> str:
            async with limit:
                return await api.verify(otp_id, messages[otp_id][-1]["code"])

        verdicts = dict(zip(delivered, await asyncio.gather(*(verify(otp_id) for otp_id in delivered)), strict=True))
        not_approved = {otp_id: verdict for otp_id, verdict in verdicts.items() if verdict != "APPROVED"}
        assert not not_approved, f"{why}: delivered codes that did not verify: {not_approved}"
        _summary(why, answers, kept, gone, Path(own.stack.logs))
    finally:
        trouble.clean_up()


def _summary(why: str, answers: list[Answer], kept: dict[str, dict[str, Any]], gone: list[str], logs: Path) -> None:
    """What the run went through, on the test's output (``pytest -s``)."""
    statuses = Counter(answer.status for answer in answers)
    attempts = Counter(
        f"{a['vendor']}:{a['error_code'] or a['outcome']}" for report in kept.values() for a in report["attempts"]
    )
    failed = sum(report["delivered_by"] is None for report in kept.values())
    print(
        f"\n{why}\nanswers {dict(statuses)}; lost in the crash {len(gone)}; failed {failed}; attempts {dict(attempts)}"
    )
    print(f"logs in {logs}")
