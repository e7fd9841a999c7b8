"""The tasks in an in-process Celery worker (``celery_session_worker``, the worker fixture of Celery's pytest
plugin that pytest-celery loads), built by ``make_celery`` with the threads pool, on a Redis of its own
(records and broker) that the outage tests stop and start, delivering through a scripted console vendor.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from aiohttp import web
from celery import Celery
from celery.signals import after_task_publish, task_postrun, worker_ready

from config import Settings
from devtools.embedded_redis import EmbeddedRedis
from dispatcher.constants import POSTBACK_QUEUE, SEND_QUEUE, SEND_TASK
from dispatcher.inprocess_client import InProcessClient
from dispatcher.jobs import celery_config
from tests.support import random_number, wait_for
from workers.app import make_celery
from workers.tasks import AllOtpsFailed, Ending, Fate, Jobs, OtpsRunAgain, conclude

# The worker's consumer warns (Celery 6 will change a default) when Redis goes away under it.
pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.CPendingDeprecationWarning")

RETRY_DELAY = 0.2
"""The vendor's backoff: its first retry waits 0.1 to 0.2 s."""
SWEEP_INTERVAL = 0.2
"""Seconds between two sweeps for lost jobs."""
ANSWER_WITHIN = 10.0
"""Seconds a vendor's answer may wait for the test to release it."""


@dataclass
class Vendor:
    """A console vendor (``POST /inbox/<number>``) answering each number's requests with the statuses
    scripted for it (200 once they run out); a held number's next answer waits until it is released."""

    url: str = ""
    scripts: dict[str, list[int]] = field(default_factory=dict)
    calls: dict[str, list[float]] = field(default_factory=dict)
    held: dict[str, threading.Event] = field(default_factory=dict)

    async def inbox(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        self.calls.setdefault(number, []).append(time.time())
        release = self.held.pop(number, None)
        if release is not None:
            await asyncio.get_running_loop().run_in_executor(None, release.wait, ANSWER_WITHIN)
        script = self.scripts.get(number, [])
        return web.json_response({}, status=script.pop(0) if script else 200)

    def hold(self, number: str) -> threading.Event:
        self.held[number] = threading.Event()
        return self.held[number]


@pytest.fixture(scope="session")
def vendor() -> Iterator[Vendor]:
    scripted = Vendor()
    app = web.Application()
    app.router.add_post("/inbox/{number}", scripted.inbox)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    scripted.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    thread = threading.Thread(target=loop.run_forever, name="scripted-vendor", daemon=True)
    thread.start()
    yield scripted
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(scope="session")
def tasks_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """The Redis of these tests' worker: its records and its broker."""
    with EmbeddedRedis(tmp_path_factory.mktemp("tasks-redis")) as server:
        yield server


@pytest.fixture(scope="session")
def settings(tasks_redis: EmbeddedRedis, vendor: Vendor) -> Settings:
    console = {
        "name": "console",
        "kind": "console",
        "base_url": vendor.url,
        "timeout": 1.0,
        "attempts": 2,
        "retry_delay": RETRY_DELAY,
        "retry_delay_max": RETRY_DELAY,
    }
    return Settings(
        redis_url=tasks_redis.url,
        secret_key="tasks-test-secret-key",
        providers=[console],
        error_retry_delay=0.05,
        busy_retry_delay=0.05,
        postback_retry_delay_max=1.0,
        visibility_timeout=10,
        sweep_interval=SWEEP_INTERVAL,
    )


@pytest.fixture(scope="session")
def celery_session_app(settings: Settings) -> Iterator[Celery]:
    """The project's own worker app, for ``celery_session_worker``."""
    app = make_celery(settings)
    yield app
    app.close()


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    return {"concurrency": 4, "perform_ping_check": False, "queues": [SEND_QUEUE, POSTBACK_QUEUE]}


@pytest.fixture(scope="session")
def ready_worker(celery_session_worker: object) -> object:
    """The session worker, once ready as ``otp-dispatcher worker`` is: Celery's test worker announces itself
    with its own signal, so ``worker_ready`` (the sweeper's start) is sent here."""
    worker_ready.send(sender=celery_session_worker)
    return celery_session_worker


@pytest.fixture
async def client(settings: Settings, ready_worker: object) -> AsyncIterator[InProcessClient]:
    """The producer side, publishing to the running worker."""
    async with InProcessClient(settings) as producer:
        yield producer


@pytest.fixture
def broker(tasks_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(tasks_redis.url, decode_responses=True)
    yield client
    client.close()


@dataclass
class Seen:
    """Send jobs published, and send tasks finished, while the block ran (Celery's signals)."""

    published: list[dict[str, Any]] = field(default_factory=list)
    finished: list[tuple[float, str, list[list[Any]]]] = field(default_factory=list)
    """When each send task returned (``time.monotonic()``), its task id and its jobs."""
    states: dict[str, str] = field(default_factory=dict)
    """The state each send task ended in (``SUCCESS``, ``RETRY``, ``FAILURE``), by task id."""

    def jobs_of(self, otp_id: str) -> list[dict[str, Any]]:
        return [job for job in self.published if job["args"][0][0][0] == otp_id]

    def runs_of(self, otp_id: str) -> list[tuple[float, str]]:
        return [(at, task_id) for at, task_id, jobs in self.finished if any(job[0] == otp_id for job in jobs)]


@pytest.fixture
def seen() -> Iterator[Seen]:
    record = Seen()

    def published(sender: str, headers: dict[str, Any], body: Any, **_: Any) -> None:
        if sender == SEND_TASK:
            record.published.append({"args": body[0], "eta": headers.get("eta"), "retries": headers.get("retries")})

    def finished(sender: Any, task_id: str, args: Any, state: str, **_: Any) -> None:
        if sender.name == SEND_TASK:
            record.states[task_id] = state
            record.finished.append((time.monotonic(), task_id, args[0]))

    after_task_publish.connect(published, weak=False)
    task_postrun.connect(finished, weak=False)
    yield record
    after_task_publish.disconnect(published)
    task_postrun.disconnect(finished)


async def delivered(client: InProcessClient, otp_id: str) -> None:
    async def done() -> bool | None:
        report = await client.report(otp_id)
        return True if report.delivered_by is not None else None

    await wait_for(done)


def unacked_task_ids(broker: redis.Redis) -> set[str]:
    """The ids of the jobs the broker handed out and has not had acknowledged (kombu's ``unacked`` hash)."""
    entries = broker.hgetall("unacked")
    return {json.loads(entry)[0]["headers"]["id"] for entry in entries.values()}


@asynccontextmanager
async def broker_down(tasks_redis: EmbeddedRedis) -> AsyncIterator[None]:
    tasks_redis.stop()
    try:
        yield
    finally:
        tasks_redis.start()


async def test_a_send_job_delivers_and_is_acknowledged(
    client: InProcessClient, vendor: Vendor, broker: redis.Redis, seen: Seen
) -> None:
    recipient = random_number()

    otp_id = (await client.send(recipient, "Your code is {}")).otp_id

    await delivered(client, otp_id)
    await wait_for(lambda: _true(seen.runs_of(otp_id)))  # the record is written before the task returns
    [(_, task_id)] = seen.runs_of(otp_id)

    async def acknowledged() -> bool | None:
        return True if task_id not in unacked_task_ids(broker) else None

    await wait_for(acknowledged)
    assert len(vendor.calls[recipient]) == 1
    assert (await client.report(otp_id)).delivered_by == "console"


async def test_a_temporary_vendor_failure_is_queued_again_as_a_job_of_its_own_with_a_countdown(
    client: InProcessClient, vendor: Vendor, seen: Seen
) -> None:
    recipient = random_number()
    vendor.scripts[recipient] = [503]

    otp_id = (await client.send(recipient, "Your code is {}")).otp_id
    await delivered(client, otp_id)

    first, retry = seen.jobs_of(otp_id)
    assert first["eta"] is None
    assert retry["eta"] is not None
    assert len(retry["args"][0]) == 1  # a job of its own, for its one OTP
    assert retry["args"][0][0][1] > first["args"][0][0][1]  # with a new job number
    called, again = vendor.calls[recipient]
    assert again - called >= RETRY_DELAY / 2
    await wait_for(lambda: _true(len(seen.runs_of(otp_id)) >= 2))  # the record says delivered before the task ends
    assert len(seen.runs_of(otp_id)) == 2


async def test_a_retry_the_broker_cannot_take_is_queued_by_the_sweeper_once_it_can(
    client: InProcessClient, vendor: Vendor, tasks_redis: EmbeddedRedis, settings: Settings, seen: Seen
) -> None:
    recipient = random_number()
    vendor.scripts[recipient] = [503]
    answer = vendor.hold(recipient)
    otp_id = (await client.send(recipient, "Your code is {}")).otp_id
    await wait_for(lambda: _true(recipient in vendor.calls))

    async with broker_down(tasks_redis):
        answer.set()  # the run cannot record the answer, nor publish its retry: Redis is gone
        await wait_for(lambda: _true(seen.runs_of(otp_id)))

    await delivered(client, otp_id)
    assert len(vendor.calls[recipient]) == 2


async def test_while_the_broker_is_down_a_task_returns_at_once_and_no_pool_thread_waits(
    client: InProcessClient, vendor: Vendor, tasks_redis: EmbeddedRedis, settings: Settings, seen: Seen
) -> None:
    recipient = random_number()
    answer = vendor.hold(recipient)
    otp_id = (await client.send(recipient, "Your code is {}")).otp_id
    await wait_for(lambda: _true(recipient in vendor.calls))

    async with broker_down(tasks_redis):
        answer.set()
        await wait_for(lambda: _true(seen.runs_of(otp_id)), within=2 * settings.redis_timeout + 1)

    await delivered(client, otp_id)


@pytest.mark.parametrize(("statuses", "last"), [([503], "SUCCESS"), ([503, 503], "FAILURE")], ids=["ok", "failed"])
async def test_jobs_that_end_retried_or_failed_are_acknowledged_not_queued_again(
    client: InProcessClient, vendor: Vendor, broker: redis.Redis, seen: Seen, statuses: list[int], last: str
) -> None:
    # Given the only vendor failing once (then delivering) or twice (then the OTP has failed on every vendor)
    recipient = random_number()
    vendor.scripts[recipient] = list(statuses)

    # When an OTP is sent: its first job ends RETRY, the second SUCCESS or FAILURE
    otp_id = (await client.send(recipient, "Your code is {}")).otp_id
    await wait_for(lambda: _true(len(seen.runs_of(otp_id)) == 2))
    (_, first), (_, second) = seen.runs_of(otp_id)
    assert (seen.states[first], seen.states[second]) == ("RETRY", last)

    # Then the broker holds neither job: both were acknowledged, and nothing more was queued
    async def acknowledged() -> bool | None:
        return True if not {first, second} & unacked_task_ids(broker) else None

    await wait_for(acknowledged)
    assert len(seen.jobs_of(otp_id)) == 2


def test_a_job_whose_otps_were_delivered_or_had_nothing_to_do_returns_each_fate() -> None:
    fates = [Fate("a", Ending.DONE, "DELIVERED"), Fate("b", Ending.DONE, "NOTHING TO DO")]

    assert conclude(fates) == {"a": "DELIVERED", "b": "NOTHING TO DO"}


def test_a_job_with_a_failed_otp_among_delivered_ones_succeeds_and_names_the_failure() -> None:
    fates = [Fate("a", Ending.DONE, "DELIVERED"), Fate("b", Ending.FAILED, "FAILED")]

    assert conclude(fates) == {"a": "DELIVERED", "b": "FAILED"}


def test_a_job_whose_otps_all_failed_raises_all_otps_failed_naming_each() -> None:
    fates = [Fate("a", Ending.FAILED, "FAILED"), Fate("b", Ending.FAILED, "RUN FAILED: RedisError; dropped")]

    with pytest.raises(AllOtpsFailed) as raised:
        conclude(fates)

    assert str(raised.value) == "otp a: FAILED; otp b: RUN FAILED: RedisError; dropped"


def test_a_job_with_an_otp_to_run_again_raises_a_retry_reading_every_fate() -> None:
    fates = [Fate("a", Ending.FAILED, "FAILED"), Fate("b", Ending.AGAIN, "RETRY in 0.10 s as job 2 (task t)")]

    with pytest.raises(OtpsRunAgain) as raised:
        conclude(fates)

    assert repr(raised.value) == "OtpsRunAgain('otp a: FAILED; otp b: RETRY in 0.10 s as job 2 (task t)')"


def test_an_otp_twice_in_one_job_keeps_both_fates() -> None:
    fates = [Fate("a", Ending.DONE, "NOTHING TO DO"), Fate("a", Ending.DONE, "DELIVERED")]

    assert conclude(fates) == {"a": "NOTHING TO DO; DELIVERED"}


async def _true(condition: object) -> bool | None:
    return True if condition else None


def test_the_sweeper_reads_the_send_backlog_from_the_broker_not_the_store(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given a dispatcher whose broker is another Redis than its store (OTP_BROKER_URL)
    with EmbeddedRedis(tmp_path_factory.mktemp("broker-redis")) as broker:
        split = settings.model_copy(update={"broker_url": broker.url})
        app = Celery("backlog-test", set_as_current=False)
        app.conf.update(celery_config(split))
        jobs = Jobs(app, split)
        # When a job waits in the broker's send queue (and none in the store's), Then there is a backlog
        empty = jobs.send_backlog()
        with broker.client() as client:
            client.lpush(SEND_QUEUE, "a job waiting for a worker")
        waiting = jobs.send_backlog()
    # and when the broker does not answer, one is assumed (a job may be waiting there)
    started = time.monotonic()
    unknown = jobs.send_backlog()
    app.close()

    assert (empty, waiting, unknown) == (False, True, True)
    assert time.monotonic() - started < 10
