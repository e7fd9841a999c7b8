"""Redis goes away, comes back, loses its data or fills up, under a running API and worker of their own.

This module runs its own stack (an embedded Redis in a temporary directory, the sandbox, the API and one
worker) so it can stop and restart that Redis without disturbing the session's. Redis always comes back
on the same port; the API is never restarted, the worker only where jobs must wait in the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from devtools.embedded_redis import EmbeddedRedis
from dispatcher.constants import SEND_QUEUE, record_key
from tests.support import (
    CODE_VENDORS,
    Api,
    Stack,
    quiet_api,
    random_number,
    running_stack,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.slow

ANSWER_WITHIN = 2.0
"""Seconds within which the API answers every request while Redis is down."""
AOF_FSYNC_WINDOW = 1.1
"""Redis fsyncs its append-only file every second: writes older than this survive a crash."""
RERUN_HERE = "the sweeper queues it once it can"
"""What a worker logs when the broker cannot take a job it publishes (``workers.tasks.Jobs.publish``)."""
SEND_PATH = "/verify/v1/otp/send-otp"
VERIFY_PATH = "/verify/v1/otp/verify-otp"


@dataclass
class OwnStack:
    """The module's stack and the Redis under it, which the tests stop, restart and replace."""

    stack: Stack
    redis: EmbeddedRedis
    data_dirs: Path

    @property
    def worker_pid(self) -> int:
        return self.stack.processes["worker"].pid

    def worker_alive(self) -> bool:
        return self.stack.processes["worker"].poll() is None


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    data_dirs = tmp_path_factory.mktemp("outage-redis")
    server = EmbeddedRedis(data_dirs / "data")
    server.start()
    own = None
    try:
        with running_stack(server.url, tmp_path_factory.mktemp("outage-logs")) as stack:
            own = OwnStack(stack, server, data_dirs)
            yield own
    finally:
        (own.redis if own else server).stop()  # a test may have replaced the server


@pytest.fixture
async def api(own: OwnStack) -> AsyncIterator[Api]:
    """A client of the module's stack, as ``tests/conftest.py``'s ``api`` is of the session's."""
    client = redis.Redis.from_url(own.stack.redis_url, decode_responses=True)
    async with quiet_api(own.stack, client) as api:
        yield api
    client.close()


@asynccontextmanager
async def redis_down(own: OwnStack) -> AsyncIterator[None]:
    """Redis stopped (SIGTERM) for the block, then started again on the same port with the same data."""
    own.redis.stop()
    try:
        yield
    finally:
        own.redis.start()


async def timed(call: Awaitable[tuple[int, Any]]) -> tuple[int, Any, float]:
    started = time.monotonic()
    status, body = await call
    return status, body, time.monotonic() - started


async def every_vendor_healthy(api: Api) -> None:
    """Clear the faults without clearing the inbox."""
    for vendor in CODE_VENDORS:
        await api.fault(vendor)


def worker_log_count(own: OwnStack, text: str) -> int:
    return (own.stack.logs / "worker.log").read_text().count(text)


async def code_for(api: Api, recipient: str) -> str:
    return str((await api.inbox(recipient))["code"])


# scenario 5: Redis stopped while the API takes requests --------------------------------------------


@asynccontextmanager
async def redis_frozen(own: OwnStack) -> AsyncIterator[None]:
    """Redis paused (SIGSTOP) for the block: its connections stay open and never answer; then resumed."""
    own.redis.pause()
    try:
        yield
    finally:
        own.redis.resume()


@pytest.mark.parametrize("outage", [redis_down, redis_frozen], ids=["stopped", "frozen"])
async def test_with_redis_out_every_request_answers_503_within_two_seconds(
    api: Api, own: OwnStack, outage: Callable[[OwnStack], AbstractAsyncContextManager[None]]
) -> None:
    otp_id = await api.send()
    await api.delivered(otp_id)

    async with outage(own):
        answers = await asyncio.gather(
            *[timed(api.post(SEND_PATH, {"recipient": random_number(), "content": "Code {}"})) for _ in range(5)],
            *[timed(api.post(VERIFY_PATH, {"otp_id": otp_id, "otp_code": "123456"})) for _ in range(5)],
            *[timed(api.get(f"/verify/v1/report/{otp_id}")) for _ in range(5)],
        )
        ready = await timed(api.get("/readyz", headers={}))
        alive = await timed(api.get("/healthz", headers={}))

    for status, body, elapsed in answers:
        assert status == 503, body
        assert body["detail"]["code"] == "SERVICE_UNAVAILABLE"
        assert body["detail"]["message"]
        assert elapsed < ANSWER_WITHIN
    assert ready[0] == 503
    assert ready[2] < ANSWER_WITHIN
    assert alive[:2] == (200, {"status": "ok"})
    assert await api.verify(otp_id, "000000") == "FAILED"  # back: not one of the refused verifies was counted


async def test_after_redis_returns_the_same_worker_delivers_and_verify_works_without_restarts(
    api: Api, own: OwnStack
) -> None:
    worker = own.worker_pid
    async with redis_down(own):
        status, _ = await api.post(SEND_PATH, {"recipient": random_number(), "content": "Code {}"})
        assert status == 503

    recipient = random_number()
    otp_id = await api.send(recipient=recipient)
    report = await api.delivered(otp_id)

    assert report["delivered_by"] == "d7"
    assert await api.verify(otp_id, await code_for(api, recipient)) == "APPROVED"
    assert (own.worker_pid, own.worker_alive()) == (worker, True)
    assert (await api.get("/readyz", headers={}))[0] == 200


async def test_sends_accepted_before_redis_stops_are_all_delivered_after_it_returns(api: Api, own: OwnStack) -> None:
    await api.fault("d7", latency_ms=200)  # some sends are with the vendor, the rest queued, when Redis stops
    stranded = worker_log_count(own, RERUN_HERE)
    otp_ids = [await api.send() for _ in range(20)]

    async with redis_down(own):

        async def job_stranded() -> bool | None:  # a run failed and the broker could not take its retry
            return True if worker_log_count(own, RERUN_HERE) > stranded else None

        await wait_for(job_stranded)

    reports = [await api.delivered(otp_id) for otp_id in otp_ids]
    assert [report["status"] for report in reports] == ["OPEN"] * len(otp_ids)
    assert all(report["delivered_by"] == "d7" for report in reports)
    assert own.worker_alive()


async def test_a_delivery_the_vendor_took_while_redis_was_stopping_is_recorded_not_sent_again(
    api: Api, own: OwnStack
) -> None:
    await api.fault("d7", latency_ms=800)  # the vendor answers after Redis has gone, within its 1 s timeout
    stranded = worker_log_count(own, RERUN_HERE)
    calls = (await api.calls()).get("d7", {}).get("send-otp", 0)
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)

    async def with_the_vendor() -> bool | None:
        return True if (await api.calls()).get("d7", {}).get("send-otp", 0) > calls else None

    await wait_for(with_the_vendor)
    async with redis_down(own):

        async def job_stranded() -> bool | None:  # the run could not record the delivery, nor queue a retry
            return True if worker_log_count(own, RERUN_HERE) > stranded else None

        await wait_for(job_stranded)

    report = await api.delivered(otp_id)
    assert (report["status"], report["delivered_by"]) == ("OPEN", "d7")
    assert [message["vendor"] for message in await api.messages(recipient)] == ["d7"]


# scenario 6: Redis crashes with jobs queued, and replays its append-only file -----------------------


async def test_jobs_queued_when_redis_crashes_are_delivered_after_it_replays_its_append_only_file(
    api: Api, own: OwnStack
) -> None:
    worker = own.stack.processes["worker"]
    worker.terminate()  # nobody takes the jobs: they wait in Redis
    await asyncio.to_thread(worker.wait, 30)
    try:
        queued = api.redis.llen(SEND_QUEUE)  # jobs the stopped worker gave back, if any
        otp_ids = [await api.send() for _ in range(5)]
        assert api.redis.llen(SEND_QUEUE) == queued + 5
        await asyncio.sleep(AOF_FSYNC_WINDOW)  # the crash comes after the fsync window, by the scenario's design
        own.redis.kill()
        own.redis.start()
    finally:
        await asyncio.to_thread(start_worker, own.stack)

    reports = [await api.delivered(otp_id) for otp_id in otp_ids]
    assert [report["delivered_by"] for report in reports] == ["d7"] * 5


async def test_codes_sent_before_a_redis_crash_verify_after_it(api: Api, own: OwnStack) -> None:
    d7_number, console_number = random_number(), random_number()
    by_d7 = await api.send(recipient=d7_number)
    await api.delivered(by_d7)
    await api.only_console()
    by_console = await api.send(recipient=console_number)
    assert (await api.delivered(by_console))["delivered_by"] == "console"
    await every_vendor_healthy(api)
    await asyncio.sleep(AOF_FSYNC_WINDOW)  # the crash comes after the fsync window, by the scenario's design

    own.redis.kill()
    own.redis.start()

    d7_code, console_code = await code_for(api, d7_number), await code_for(api, console_number)
    assert await api.verify(by_d7, d7_code) == "APPROVED"
    assert await api.verify(by_console, console_code) == "APPROVED"


# scenario 7: Redis comes back empty (no persistence) --------------------------------------------------


def replace_with_an_empty_redis(own: OwnStack) -> None:
    """Redis stopped and started again on the same port with an empty data directory: everything is lost."""
    own.redis.stop()
    empty = EmbeddedRedis(own.data_dirs / f"empty-{time.monotonic_ns()}")
    empty.port = own.redis.port
    own.redis = empty
    own.redis.start()


async def test_after_redis_loses_its_data_a_code_sent_before_never_verifies(api: Api, own: OwnStack) -> None:
    d7_number, console_number = random_number(), random_number()
    by_d7 = await api.send(recipient=d7_number)
    await api.delivered(by_d7)
    await api.only_console()
    by_console = await api.send(recipient=console_number)
    await api.delivered(by_console)
    await every_vendor_healthy(api)

    replace_with_an_empty_redis(own)

    d7_code, console_code = await code_for(api, d7_number), await code_for(api, console_number)
    assert await api.verify(by_d7, d7_code) == "FAILED"
    assert await api.verify(by_console, console_code) == "FAILED"
    assert (await api.get(f"/verify/v1/report/{by_d7}"))[0] == 404


async def test_after_redis_loses_its_data_new_sends_are_still_delivered(api: Api, own: OwnStack) -> None:
    replace_with_an_empty_redis(own)

    recipient = random_number()
    otp_id = await api.send(recipient=recipient)

    assert (await api.delivered(otp_id))["delivered_by"] == "d7"
    assert await api.verify(otp_id, await code_for(api, recipient)) == "APPROVED"


# scenario 8: Redis full (maxmemory, noeviction) -----------------------------------------------------


async def test_with_redis_full_sends_answer_503_and_stored_otps_still_verify_and_none_is_evicted(
    api: Api, own: OwnStack
) -> None:
    recipients = [random_number() for _ in range(5)]
    stored = [await api.send(recipient=recipient) for recipient in recipients]
    for otp_id in stored:
        await api.delivered(otp_id)
    codes = [await code_for(api, recipient) for recipient in recipients]
    used = int(api.redis.info("memory")["used_memory"])

    api.redis.config_set("maxmemory", used + 64 * 1024)
    try:
        accepted, refusal = await send_until_refused(api)
        reports = [(await api.get(f"/verify/v1/report/{otp_id}"))[0] for otp_id in stored + accepted]
        verified = [await api.verify(otp_id, code) for otp_id, code in zip(stored, codes, strict=True)]
    finally:
        api.redis.config_set("maxmemory", 0)

    assert refusal[0] == 503
    assert refusal[1]["detail"]["code"] == "SERVICE_UNAVAILABLE"
    assert reports == [200] * len(stored + accepted)
    assert verified == ["APPROVED"] * len(stored)
    assert int(api.redis.info("stats")["evicted_keys"]) == 0
    assert api.redis.exists(*[record_key(otp_id) for otp_id in stored + accepted]) == len(stored + accepted)
    assert [(await api.delivered(otp_id))["delivered_by"] for otp_id in accepted] == ["d7"] * len(accepted)
    assert (await api.delivered(await wait_for(lambda: accepted_send(api))))["delivered_by"] == "d7"
    assert own.worker_alive()


async def accepted_send(api: Api) -> str | None:
    """The otp_id of a send, or None if it was refused."""
    status, body = await api.post(SEND_PATH, {"recipient": random_number(), "content": "Code {}"})
    return str(body["otp_id"]) if status == 200 else None


async def send_until_refused(api: Api, most: int = 300) -> tuple[list[str], tuple[int, Any]]:
    """Sends until one is refused: the otp_ids accepted before, and the refusal."""
    accepted = []
    for _ in range(most):
        status, body = await api.post(SEND_PATH, {"recipient": random_number(), "content": "Code {}"})
        if status != 200:
            return accepted, (status, body)
        accepted.append(str(body["otp_id"]))
    raise AssertionError(f"{most} sends accepted with Redis full")


async def test_a_postback_owed_when_redis_stops_is_sent_once_it_returns(api: Api, own: OwnStack) -> None:
    received: list[dict[str, Any]] = []
    accepting = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:  # refuses until Redis has been away and come back
        if not accepting.is_set():
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        otp_id = await api.send(success_url=str(server.make_url("/hook")))
        await api.delivered(otp_id)
        async with redis_down(own):
            accepting.set()  # the postback is owed in Redis only: nothing may send it while Redis is away

        async def posted() -> bool | None:
            return True if received else None

        await wait_for(posted)
    finally:
        await server.close()

    assert [(event["otp_id"], event["event"]) for event in received] == [(otp_id, "DELIVERED")]
