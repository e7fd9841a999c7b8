"""A worker stopped with SIGTERM while sends are in flight loses none of them."""

import asyncio
import signal

from celery import Celery

from dispatcher.constants import SEND_QUEUE
from dispatcher.jobs import celery_config
from tests.support import Api, Stack, start_process, wait_for

SENDS = 100


def consume_only(app: Celery, prefix: str) -> None:
    """Let only the workers whose node name starts with ``prefix`` consume the send queue."""
    for reply in app.control.ping(timeout=2.0):
        for name in reply:
            if name.startswith(prefix):
                app.control.add_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)
            else:
                app.control.cancel_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)


async def test_sigterm_with_sends_in_flight_loses_none(api: Api, stack: Stack) -> None:
    log = stack.logs / "doomed-worker.log"

    async def started_delivering() -> bool | None:
        return True if "DELIVERED" in log.read_text() else None

    app = Celery(set_as_current=False)
    app.conf.update(celery_config(stack.settings, stack.redis_url))
    doomed = start_process(
        "worker",
        stack.env | {"OTP_WORKER_METRICS_PORT": "0"},  # the session worker has the port
        stack.logs,
        ready=lambda log: "ready." in log,
        extra=["--", "--concurrency=8", "-n", "doomed@%h"],
        name="doomed-worker",
    )
    try:
        consume_only(app, "doomed@")
        await api.fault("d7", latency_ms=300)
        otp_ids = [await api.send() for _ in range(SENDS)]
        await wait_for(started_delivering)

        doomed.send_signal(signal.SIGTERM)  # mid-stream: some calls in flight, most jobs still queued
        await asyncio.to_thread(doomed.wait, 30)
        consume_only(app, "otp@")
        reports = [await api.delivered(otp_id) for otp_id in otp_ids]
    finally:
        if doomed.poll() is None:
            doomed.kill()
        consume_only(app, "otp@")
        app.close()

    assert doomed.returncode == 0
    assert 0 < log.read_text().count('"outcome": "DELIVERED"') < SENDS  # it was stopped mid-stream
    assert [report["delivered_by"] for report in reports] == ["d7"] * SENDS
    assert all(len({a["send_number"] for a in report["attempts"]}) == 1 for report in reports)
