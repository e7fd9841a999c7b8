"""Delivery through the worker: retries scheduled by the task, failover, timeouts, routes, breakers shared
between processes, expiry, and what a job carries. Each branch of one delivery run is tested in-process in
tests/workers/test_delivery.py."""

import asyncio
import json
import time

from dispatcher.constants import SEND_QUEUE
from dispatcher.store import connect
from tests.support import Api, Stack, consume_only, control_app, random_number, wait_for
from workers.breaker import SYNC_INTERVAL, CallResult, CircuitBreakers


async def test_a_failing_vendor_is_retried_then_failed_over(api: Api) -> None:
    await api.fault("d7", status=503)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "octopush"
    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [
        ("d7", "TEMPORARY_ERROR"),
        ("d7", "TEMPORARY_ERROR"),
        ("octopush", "DELIVERED"),
    ]


async def test_with_the_primary_down_every_otp_is_delivered_and_verified_through_the_secondary(api: Api) -> None:
    await api.fault("d7", status=500)
    recipients = [random_number() for _ in range(5)]
    otp_ids = [await api.send(recipient=recipient) for recipient in recipients]

    reports = [await api.delivered(otp_id) for otp_id in otp_ids]

    assert {report["delivered_by"] for report in reports} == {"octopush"}
    for otp_id, recipient in zip(otp_ids, recipients, strict=True):
        assert await api.verify(otp_id, (await api.inbox(recipient))["code"]) == "APPROVED"
    assert (await api.calls())["octopush"]["validate"] == 5


async def test_a_vendor_slower_than_its_timeout_is_failed_over(api: Api) -> None:
    await api.fault("d7", latency_ms=3000)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "octopush"
    outcomes = [(a["vendor"], a["outcome"]) for a in report["attempts"]]
    assert outcomes[:2] == [("d7", "OUTCOME_UNKNOWN"), ("d7", "OUTCOME_UNKNOWN")]
    assert all(a["latency_ms"] < 1500 for a in report["attempts"])


async def test_a_country_route_sends_through_its_vendor_first(api: Api) -> None:
    recipient = "+9198" + random_number()[-8:]

    report = await api.delivered(await api.send(recipient=recipient))

    assert report["delivered_by"] == "messagecentral"
    code = (await api.inbox(recipient))["code"]
    assert await api.verify(report["otp_id"], code) == "APPROVED"


async def test_a_breaker_opened_by_another_process_is_honoured_by_the_worker(api: Api, stack: Stack) -> None:
    redis = connect(stack.redis_url, 1.0)
    d7 = next(p for p in stack.settings.providers if p.name == "d7")
    await CircuitBreakers(redis).record(d7, CallResult.TRIP, time.time())
    await redis.aclose()
    # The promise is "within SYNC_INTERVAL": a worker that called d7 just before trusts its copy until then.
    await asyncio.sleep(SYNC_INTERVAL)

    report = await api.delivered(await api.send())

    assert report["attempts"][0]["error_code"] == "CIRCUIT_OPEN"
    assert report["delivered_by"] == "octopush"


async def test_a_resend_after_failover_is_verified_by_the_vendor_that_delivered_it(api: Api, stack: Stack) -> None:
    stack.point_octopush_receipts()
    await api.fault("d7", no_credit=True)
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, retry_delay=0)
    assert (await api.receipted(otp_id))["attempts"][-1]["receipt"] == "DELIVERED"

    await api.post("/verify/v1/otp/resend-otp", {"otp_id": otp_id})
    report = await api.delivered(otp_id, count=2)

    assert [(a["send_number"], a["vendor"]) for a in report["attempts"] if a["outcome"] == "DELIVERED"] == [
        (1, "octopush"),
        (2, "octopush"),
    ]
    assert await api.verify(otp_id, (await api.inbox(recipient))["code"]) == "APPROVED"


async def test_nothing_is_delivered_once_the_otp_has_expired(api: Api) -> None:
    await api.fault("d7", latency_ms=1500)  # longer than the vendor timeout (1 s) and the expiry

    report = await api.delivered(await api.send(expiry=1))

    assert report["status"] == "EXPIRED"
    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [("d7", "OUTCOME_UNKNOWN")]
    assert "octopush" not in await api.calls()


async def queued_send(api: Api) -> tuple[str, str]:
    """An OTP (1 s expiry) whose job waits in the queue, and the job's task id. A worker's BRPOP already
    under way when its consumer was cancelled still takes one job: such a send is let through first."""
    for _ in range(3):
        otp_id = await api.send(expiry=1)
        message = api.redis.lindex(SEND_QUEUE, 0)
        if message is not None:
            return otp_id, str(json.loads(message)["headers"]["id"])
        await api.delivered(otp_id)
        await api.reset_sandbox()
    raise AssertionError("every send was taken by a worker that should not consume")


async def test_a_job_still_queued_when_its_otp_expires_is_revoked_unsent(api: Api, stack: Stack) -> None:
    app = control_app(stack)
    try:
        consume_only(app, "nobody@")  # the job waits in the queue
        otp_id, task_id = await queued_send(api)

        async def expired() -> bool | None:
            return True if (await api.report(otp_id))["status"] == "EXPIRED" else None

        await wait_for(expired)
        consume_only(app, "otp@")

        worker_log = stack.logs / "worker.log"

        async def revoked() -> bool | None:
            return True if f"Discarding revoked task: otp.send[{task_id}]" in worker_log.read_text() else None

        await wait_for(revoked)
    finally:
        consume_only(app, "otp@")
        app.close()

    assert (await api.report(otp_id))["attempts"] == []
    assert await api.calls() == {}
