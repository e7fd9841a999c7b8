"""Vendors that time out after sending, or answer garbage, through the whole stack (the session's).

Scenario 9: a vendor that sends the code and answers too late (outcome unknown); scenario 10: a vendor
whose answer is an invalid JSON body, an HTML error page, an empty body or the right body under the
wrong content type. The OTP still ends delivered, the attempt log says what happened, the code the
phone holds last verifies, and no task crashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.support import Api, Stack, random_number, wait_for

pytestmark = pytest.mark.slow

INDIA = "+9198"
"""Numbers routed to Message Central first."""


@pytest.fixture(autouse=True)
def no_crashed_task(stack: Stack) -> Iterator[None]:
    """The worker logs no traceback and no task that raised unexpectedly while the test runs."""
    log = stack.logs / "worker.log"
    start = log.stat().st_size
    yield
    with log.open(errors="replace") as lines:
        lines.seek(start)
        written = lines.read()
    assert "Traceback" not in written
    assert "raised unexpected" not in written


def outcomes(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["vendor"], a["outcome"], a["error_code"]) for a in report["attempts"]]


# scenario 9: the vendor sent the code but its answer came too late ----------------------------------


async def test_a_vendor_that_sends_then_answers_too_late_is_failed_over_and_the_last_code_verifies(api: Api) -> None:
    await api.fault("d7", late_answer_ms=1500)  # the vendor timeout is 1 s
    recipient = random_number()

    report = await api.delivered(await api.send(recipient=recipient))

    assert outcomes(report) == [
        ("d7", "OUTCOME_UNKNOWN", "NO_ANSWER"),
        ("d7", "OUTCOME_UNKNOWN", "NO_ANSWER"),
        ("octopush", "DELIVERED", None),
    ]
    assert [message["vendor"] for message in await api.messages(recipient)] == ["d7", "d7", "octopush"]
    assert await api.verify(report["otp_id"], (await api.inbox(recipient))["code"]) == "APPROVED"


async def test_a_transport_code_that_lands_after_its_retry_still_verifies(api: Api) -> None:
    await api.only_console()
    await api.fault("console", latency_ms=2500)  # sent 2.5 s after the request: after the retry's code
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)

    async def first_call_arrived() -> bool | None:
        return True if (await api.calls()).get("console", {}).get("inbox") else None

    await wait_for(first_call_arrived)
    await api.fault("console")  # the retry is answered at once
    report = await api.delivered(otp_id)

    async def both_landed() -> list[dict[str, Any]] | None:
        messages = await api.messages(recipient)
        return messages if len(messages) == 2 else None

    retried, late = await wait_for(both_landed)
    assert outcomes(report)[-2:] == [("console", "OUTCOME_UNKNOWN", "NO_ANSWER"), ("console", "DELIVERED", None)]
    assert seconds_between(retried, late) > 1.0  # the phone holds the late code last
    assert late["code"] != retried["code"]
    assert await api.verify(otp_id, late["code"]) == "APPROVED"


def seconds_between(earlier: dict[str, Any], later: dict[str, Any]) -> float:
    return (datetime.fromisoformat(later["sent_at"]) - datetime.fromisoformat(earlier["sent_at"])).total_seconds()


# scenario 10: the vendor answers garbage --------------------------------------------------------------

GARBAGE = [
    pytest.param({"garbage": "invalid_json"}, "BAD_RESPONSE", id="invalid-json-200"),
    pytest.param({"garbage": "html", "status": 502}, "HTTP_502", id="html-502"),
    pytest.param({"garbage": "html"}, "BAD_RESPONSE", id="html-200"),
    pytest.param({"garbage": "empty"}, "BAD_RESPONSE", id="empty-200"),
]
FIRST_AND_NEXT = [
    pytest.param("d7", "octopush", id="d7"),
    pytest.param("octopush", "messagecentral", id="octopush"),
    pytest.param("messagecentral", "d7", id="messagecentral"),
]


async def routed_to(api: Api, vendor: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    """A recipient whose route starts with ``vendor``, and the attempts logged before it is reached."""
    if vendor == "messagecentral":
        return INDIA + random_number()[-8:], []
    if vendor == "octopush":
        await api.fault("d7", no_credit=True)
        return random_number(), [("d7", "VENDOR_UNAVAILABLE", "INSUFFICIENT_CREDIT")]
    return random_number(), []


@pytest.mark.parametrize(("vendor", "next_vendor"), FIRST_AND_NEXT)
@pytest.mark.parametrize(("garbage", "error_code"), GARBAGE)
async def test_a_vendor_answering_garbage_is_retried_then_failed_over(
    api: Api, vendor: str, next_vendor: str, garbage: dict[str, Any], error_code: str
) -> None:
    recipient, skipped = await routed_to(api, vendor)
    await api.fault(vendor, **garbage)

    report = await api.delivered(await api.send(recipient=recipient))

    assert outcomes(report) == [
        *skipped,
        (vendor, "TEMPORARY_ERROR", error_code),
        (vendor, "TEMPORARY_ERROR", error_code),
        (next_vendor, "DELIVERED", None),
    ]
    assert await api.verify(report["otp_id"], (await api.inbox(recipient))["code"]) == "APPROVED"


@pytest.mark.parametrize("vendor", ["d7", "octopush", "messagecentral"])
async def test_a_right_answer_under_the_wrong_content_type_is_read(api: Api, vendor: str) -> None:
    recipient, skipped = await routed_to(api, vendor)
    await api.fault(vendor, garbage="wrong_content_type")

    report = await api.delivered(await api.send(recipient=recipient))

    assert outcomes(report) == [*skipped, (vendor, "DELIVERED", None)]
    assert await api.verify(report["otp_id"], (await api.inbox(recipient))["code"]) == "APPROVED"
