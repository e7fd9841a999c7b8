"""Workers killed outright (SIGKILL), jobs handed out twice by the broker: nothing lost, no vendor called twice.

Each test runs its own workers with a short visibility timeout (as short as the timeouts' nesting allows), so
the broker hands out again, within seconds, the jobs a dead worker took; the session's worker stands aside
meanwhile.
"""

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from celery import Celery
from redis import Redis

from dispatcher.constants import SEND_QUEUE
from dispatcher.jobs import celery_config
from dispatcher.store import MAX_CRASHES
from tests.support import (
    CODE_VENDORS,
    TEST_SWEEP_INTERVAL,
    Api,
    Stack,
    consume_only,
    control_app,
    extra_worker,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow

SENDS = 200
SWEEP_INTERVAL = float(TEST_SWEEP_INTERVAL)
RECOVERY = 60.0
"""Seconds within which every OTP a dead worker held must be final again."""


@pytest.fixture
def control(stack: Stack) -> Iterator[Celery]:
    app = control_app(stack)
    yield app
    consume_only(app, "otp@")
    app.close()


@pytest.fixture
def workers(stack: Stack) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts extra workers (as ``extra_worker``); every one still running is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(node: str, **options: Any) -> subprocess.Popen[bytes]:
        started.append(extra_worker(stack, node, **options))
        return started[-1]

    yield start
    for process in started:
        stop(process)


def vendors(stack: Stack, **changes: float) -> dict[str, str]:
    """Worker settings with every vendor of the stack's chain changed as given."""
    chain = [provider | changes for provider in json.loads(stack.env["OTP_PROVIDERS"])]
    return {"OTP_PROVIDERS": json.dumps(chain)}


def short_visibility(seconds: int = 10) -> dict[str, str]:
    """Worker settings with a visibility timeout just above the delivery lease of the stack's chain (four
    vendors of 1 s, plus 5 s), and the postback backoff below it."""
    return {"OTP_VISIBILITY_TIMEOUT": str(seconds), "OTP_POSTBACK_RETRY_DELAY_MAX": "1"}


@asynccontextmanager
async def impatient_broker(stack: Stack, seconds: int) -> AsyncIterator[None]:
    """For the block, the jobs left unacknowledged longer than ``seconds`` go back on the queue, as a worker
    with that visibility timeout would put them (a worker refuses one shorter than its delivery lease)."""
    app = Celery(set_as_current=False)
    config = celery_config(stack.settings)
    config["broker_transport_options"] |= {"visibility_timeout": seconds}
    app.conf.update(config)

    def restore_overdue() -> None:
        with app.connection_for_write() as connection:
            connection.default_channel.qos.restore_visible(num=1000, interval=1)

    async def keep_restoring() -> None:
        while True:
            await asyncio.to_thread(restore_overdue)
            await asyncio.sleep(0.2)

    restorer = asyncio.create_task(keep_restoring())
    try:
        yield
    finally:
        restorer.cancel()
        app.close()


async def test_a_worker_killed_with_200_sends_in_flight_loses_none_and_calls_no_vendor_twice(
    api: Api, stack: Stack, control: Celery, workers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    log = stack.logs / "doomed-worker.log"

    async def started_delivering() -> bool | None:
        return True if "DELIVERED" in log.read_text() else None

    doomed = workers("doomed", concurrency=16)
    consume_only(control, "doomed@")
    await api.fault("d7", latency_ms=300)
    otp_ids = [otp_id for _ in range(SENDS // 20) for otp_id in await asyncio.gather(*(api.send() for _ in range(20)))]
    await wait_for(started_delivering)

    doomed.kill()
    await asyncio.to_thread(doomed.wait, 10)
    workers("rescuer", env=short_visibility())
    consume_only(control, "rescuer@")
    reports = [await api.delivered(otp_id, within=RECOVERY) for otp_id in otp_ids]

    calls = await api.calls()
    d7_attempts = [a for report in reports for a in report["attempts"] if a["vendor"] == "d7"]
    lost = [a for a in d7_attempts if a["error_code"] == "WORKER_LOST"]
    assert all(report["delivered_by"] in ("d7", "octopush") for report in reports)
    assert all(sum(a["outcome"] == "DELIVERED" for a in report["attempts"]) == 1 for report in reports)
    assert all(sum(a["vendor"] == "d7" for a in report["attempts"]) <= 1 for report in reports)
    assert lost, "the worker was killed after its vendor calls had all finished"
    assert calls["d7"]["send-otp"] <= len(d7_attempts)  # no OTP reached D7 twice
    assert all(report["delivered_by"] == "octopush" for report in reports if report["attempts"][0] in lost)


async def test_an_otp_whose_runs_kill_their_worker_every_time_fails_after_three_deaths(
    api: Api, stack: Stack, control: Celery, workers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    for vendor in CODE_VENDORS:
        await api.fault(vendor, hang=True)  # each run stays inside a vendor call (1 s) until its worker dies
    consume_only(control, "nobody@")  # each new worker consumes from its start
    otp_id = await api.send()
    settings = vendors(stack, timeout=1.0) | short_visibility()

    for death in range(1, MAX_CRASHES + 1):
        victim = workers(f"victim{death}", env=settings)

        async def inside_a_vendor_call(calls: int = death) -> bool | None:
            return True if sum(sum(c.values()) for c in (await api.calls()).values()) >= calls else None

        await wait_for(inside_a_vendor_call, within=RECOVERY)
        victim.kill()
        await asyncio.to_thread(victim.wait, 10)
    workers("survivor", env=settings)
    report = await api.delivered(otp_id, within=RECOVERY)

    calls = await api.calls()
    assert report["status"] == "FAILED"
    assert f"died {MAX_CRASHES} times" in report["failure_reason"]
    assert [a["error_code"] for a in report["attempts"]] == ["WORKER_LOST"] * (MAX_CRASHES - 1)
    assert calls == {"d7": {"send-otp": 1}, "octopush": {"generate": 1}, "messagecentral": {"token": 1}}


async def test_jobs_handed_out_again_while_they_run_call_the_vendor_once_per_attempt(
    api: Api, stack: Stack, control: Celery, workers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # Every run outlasts the broker's 2 s, and retries wait almost as long: the broker hands each job out
    # again while it runs or waits.
    settings = vendors(stack, timeout=3.0, attempts=3, retry_delay=1.5, retry_delay_max=1.9)
    workers("tight", env=settings)
    consume_only(control, "tight@")
    await api.fault("d7", status=503, latency_ms=2500)
    async with impatient_broker(stack, 2):
        report = await api.delivered(await api.send(), within=RECOVERY)

    received = re.findall(r"Task otp\.send\[([0-9a-f-]+)\] received", (stack.logs / "tight-worker.log").read_text())
    calls = await api.calls()
    assert len(received) > len(set(received)), "no job was handed out twice"
    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [("d7", "TEMPORARY_ERROR")] * 3 + [
        ("octopush", "DELIVERED")
    ]
    assert calls == {"d7": {"send-otp": 3}, "octopush": {"generate": 1}}


async def test_an_otp_taken_by_a_frozen_worker_that_is_then_killed_is_delivered_by_another(
    api: Api, stack: Stack, control: Celery, workers: Callable[..., subprocess.Popen[bytes]], redis_client: Redis
) -> None:
    # The broker's pop hands the job to the frozen worker's socket; it dies before recording the job as taken.
    frozen = workers("frozen")
    consume_only(control, "frozen@")
    frozen.send_signal(signal.SIGSTOP)
    otp_id = await api.send()

    async def taken_by_the_frozen_worker() -> bool | None:
        return True if redis_client.llen(SEND_QUEUE) == 0 else None

    await wait_for(taken_by_the_frozen_worker)
    frozen.kill()
    await asyncio.to_thread(frozen.wait, 10)
    workers("rescuer")
    consume_only(control, "rescuer@")
    report = await api.delivered(otp_id, within=4 * SWEEP_INTERVAL + 5)

    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [("d7", "DELIVERED")]
    assert (await api.calls())["d7"]["send-otp"] == 1
