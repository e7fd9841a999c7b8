"""Delivery through the worker: failover, retries, the attempt log, and what a job carries."""

from tests.support import Api


async def test_a_vendor_out_of_credit_fails_over_at_once_to_the_next(api: Api) -> None:
    await api.fault("d7", no_credit=True)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "console"
    assert [(a["vendor"], a["outcome"], a["error_code"]) for a in report["attempts"]] == [
        ("d7", "VENDOR_UNAVAILABLE", "INSUFFICIENT_CREDIT"),
        ("console", "DELIVERED", None),
    ]


async def test_a_failing_vendor_is_retried_then_failed_over(api: Api) -> None:
    await api.fault("d7", status=503)

    report = await api.delivered(await api.send())

    assert report["delivered_by"] == "console"
    assert [(a["vendor"], a["outcome"]) for a in report["attempts"]] == [
        ("d7", "TEMPORARY_ERROR"),
        ("d7", "TEMPORARY_ERROR"),
        ("console", "DELIVERED"),
    ]


async def test_a_request_the_vendor_rejects_fails_the_otp_without_failover(api: Api) -> None:
    await api.fault("d7", status=422)

    report = await api.delivered(await api.send())

    assert report["status"] == "FAILED"
    assert report["failure_reason"].startswith("rejected by d7")
    assert [a["vendor"] for a in report["attempts"]] == ["d7"]
