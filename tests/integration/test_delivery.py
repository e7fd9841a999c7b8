"""Delivery through the worker: failover, retries, the attempt log, and what a job carries."""

import json
import time

from dispatcher.constants import SEND_QUEUE
from dispatcher.store import connect
from tests.support import Api, Stack, consume_only, control_app, random_number, wait_for
from workers.breaker import CallResult, CircuitBreakers


async def test_a_vendor_out_of_credit_fails_over_at_once_to_the_next(api: Api) -> None:
    await api.fault("d7", no_credit=True)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "octopush"
    assert [(a["vendor"], a["outcome"], a["error_code"]) for a in report["attempts"]] == [
        ("d7", "VENDOR_UNAVAILABLE", "INSUFFICIENT_CREDIT"),
        ("octopush", "DELIVERED", None),
    ]


async def test_a_failing_vendor_is_retried_then_failed_over(api: Api) -> None:
    await api.fault("d7", status=503)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "octopush"
    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [
        ("d7", "TEMPORARY_ERROR"),
        ("d7", "TEMPORARY_ERROR"),
        ("octopush", "DELIVERED"),
    ]


async def test_a_request_the_vendor_rejects_fails_the_otp_without_failover(api: Api) -> None:
    await api.fault("d7", status=422)

    report = await api.delivered(await api.send())

    assert report["status"] == "FAILED"
    assert report["failure_reason"].startswith("rejected by d7")
    assert [a["vendor"] for a in report["attempts"]] == ["d7"]


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


async def test_an_unavailable_vendor_opens_its_breaker_and_is_then_skipped_without_a_call(api: Api) -> None:
    await api.fault("d7", no_credit=True)
    await api.delivered(await api.send())
    await api.reset_sandbox()  # d7 is healthy again, but its circuit stays open for the cool-down

    report = await api.delivered(await api.send())

    first = report["attempts"][0]
    assert (first["vendor"], first["error_code"]) == ("d7", "CIRCUIT_OPEN")
    assert "d7" not in await api.calls()


async def test_a_breaker_opened_by_another_process_is_honoured_by_the_worker(api: Api, stack: Stack) -> None:
    redis = connect(stack.redis_url, 1.0)
    d7 = next(p for p in stack.settings.providers if p.name == "d7")
    await CircuitBreakers(redis).record(d7, CallResult.TRIP, time.time())
    await redis.aclose()

    report = await api.delivered(await api.send())

    assert report["attempts"][0]["error_code"] == "CIRCUIT_OPEN"
    assert report["delivered_by"] == "octopush"


async def test_a_resend_after_failover_is_verified_by_the_vendor_that_delivered_it(api: Api) -> None:
    await api.fault("d7", no_credit=True)
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, retry_delay=0)
    await api.delivered(otp_id)

    await api.post("/verify/v1/otp/resend-otp", {"otp_id": otp_id})
    report = await api.delivered(otp_id, count=2)

    assert [(a["send_number"], a["vendor"]) for a in report["attempts"] if a["outcome"] == "DELIVERED"] == [
        (1, "octopush"),
        (2, "octopush"),
    ]
    assert await api.verify(otp_id, (await api.inbox(recipient))["code"]) == "APPROVED"


async def test_when_every_vendor_is_down_the_otp_fails_with_every_attempt_recorded(api: Api) -> None:
    for vendor in ("d7", "octopush", "messagecentral", "console"):
        await api.fault(vendor, status=503)

    report = await api.delivered(await api.send())

    assert report["status"] == "FAILED"
    assert report["failure_reason"] == "every provider of the chain failed"
    vendors = [a["vendor"] for a in report["attempts"]]
    assert vendors == ["d7", "d7", "octopush", "octopush", "messagecentral", "messagecentral", "console", "console"]


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
