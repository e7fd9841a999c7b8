"""Workflows whole-stack: the sandbox's delivery faults make a step's message vanish or come back undelivered,
and the next step's vendor (another vendor, another channel) delivers a code that verifies.

A stack of its own (its own Redis, sandbox, API and worker), configured with workflows: ``default`` (D7 on
send-otp's channel, a 3 s deadline, then Octopush by SMS) for ``FAST`` numbers and Indian mobiles (``INDIA``,
whose country route is Message Central alone), ``slow`` (the same with a 30 s deadline) for ``SLOW`` numbers, on
which only a receipt can fail over within the test's time, and ``voice`` (D7, a 3 s deadline, then a call through
the country route) for ``VOICE`` numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dispatcher.constants import DEADLINES_KEY
from tests.support import (
    Api,
    Stack,
    delivered_to_phone,
    number,
    own_stack,
    stack_api,
    wait_for,
)

FAST = "+33622"
SLOW = "+33633"
VOICE = "+33644"
INDIA = "+9198"
"""Indian mobiles (+91 98 and 8 digits: numbers libphonenumber accepts)."""
INDIA_DIGITS = 8
INDIA_OTPS = 50
DROP_RATE = 0.4
DROP_TOLERANCE = 0.2
"""How far the share of the 50 OTPs D7 dropped may be from 40% (almost 3 standard deviations: 6.9 points)."""
DEADLINE = 3.0
SLOW_DEADLINE = 30.0
MARGIN = 6.0
"""Seconds past a deadline within which the next step's message reaches the phone (a loaded 2-core machine)."""
WORKFLOWS = {
    "default": {"steps": [{"vendor": "d7", "deadline": DEADLINE}, {"channel": "SMS", "vendor": "octopush"}]},
    "slow": {"steps": [{"vendor": "d7", "deadline": SLOW_DEADLINE}, {"channel": "SMS", "vendor": "octopush"}]},
    "voice": {"steps": [{"vendor": "d7", "deadline": DEADLINE}, {"channel": "voice"}]},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "OTP_WORKFLOWS": json.dumps(WORKFLOWS),
        "OTP_WORKFLOW_ROUTES": json.dumps({SLOW: "slow", VOICE: "voice"}),
    }
    with own_stack(tmp_path_factory, "workflow", **overrides) as started:
        yield started


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack_api(stack) as api:
        stack.point_octopush_receipts()
        yield api


async def deadline_ran(api: Api, otp_id: str) -> bool | None:
    """True once the OTP's step deadline is no longer waited for (its deadline job ran)."""
    return True if api.redis.zscore(DEADLINES_KEY, otp_id) is None else None


async def deadline_set(api: Api, otp_id: str) -> bool | None:
    """True once the OTP's step deadline is waited for (its vendor's acceptance was recorded)."""
    return True if api.redis.zscore(DEADLINES_KEY, otp_id) is not None else None


async def step_settled(api: Api, otp_id: str) -> dict[str, Any] | None:
    """The report once the first step is settled: confirmed by a delivered receipt, or followed by a second step
    a vendor took."""
    report = await api.report(otp_id)
    steps = report["workflow"]["steps"]
    confirmed = steps[0]["receipt"] == "DELIVERED"
    return report if confirmed or (len(steps) > 1 and steps[1]["vendor"] is not None) else None


async def test_a_message_the_first_vendor_drops_silently_is_delivered_by_the_next_step_after_its_deadline(
    api: Api,
) -> None:
    # Given D7 silently drops every message to +33 (accepted, never delivered, no receipt)
    await api.fault("d7", silent_drop_rate=1.0, prefix="+33")
    recipient = number(FAST)

    # When an OTP is sent to a number of the default workflow (D7, 3 s, then Octopush)
    started = time.monotonic()
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)
    took = time.monotonic() - started

    # Then Octopush delivered it after the deadline, within a few seconds of it, and its code verifies
    assert DEADLINE <= took < DEADLINE + MARGIN
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    report = await api.report(otp_id)
    steps = [(step["step"], step["vendor"], step["outcome"]) for step in report["workflow"]["steps"]]
    assert steps == [(0, "d7", "DEADLINE"), (1, "octopush", "VERIFIED")]
    assert report["delivered_by"] == "octopush"


async def test_an_undelivered_receipt_fails_over_at_once_well_before_the_deadline(api: Api) -> None:
    # Given D7 reports every message to +33 undelivered (its receipt comes 200 ms after it accepted it)
    await api.fault("d7", undelivered_rate=1.0, prefix="+33")
    recipient = number(SLOW)

    # When an OTP is sent to a number of the slow workflow (D7, 30 s, then Octopush)
    started = time.monotonic()
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, SLOW_DEADLINE / 2)
    took = time.monotonic() - started

    # Then Octopush delivered it on the receipt, far sooner than the deadline, and its code verifies
    assert took < SLOW_DEADLINE / 3
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    report = await api.report(otp_id)
    first = report["workflow"]["steps"][0]
    assert (first["vendor"], first["receipt"], first["outcome"]) == ("d7", "UNDELIVERED", "UNDELIVERED")


async def test_an_approved_verify_before_the_deadline_sends_no_second_step(api: Api) -> None:
    # Given D7 delivers every message to +33 but sends no receipt
    await api.fault("d7", no_receipt_rate=1.0, prefix="+33")
    recipient = number(FAST)
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, MARGIN)
    await wait_for(lambda: deadline_set(api, otp_id), MARGIN)

    # When the user types the code before the 3 s deadline, and the deadline job then runs
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    await wait_for(lambda: deadline_ran(api, otp_id), DEADLINE + MARGIN)

    # Then no second step went out: Octopush was never called, the phone has one message
    assert (await api.calls()).get("octopush", {}).get("generate", 0) == 0
    assert len(await api.messages(recipient)) == 1
    report = await api.report(otp_id)
    assert [step["step"] for step in report["workflow"]["steps"]] == [0]


async def test_a_whatsapp_first_step_falls_back_to_sms_and_the_report_says_the_channel_changed(api: Api) -> None:
    # Given D7 silently drops every message to +33
    await api.fault("d7", silent_drop_rate=1.0, prefix="+33")
    recipient = number(FAST)

    # When an OTP is sent by WhatsApp to a number of the default workflow
    otp_id = await api.send(recipient=recipient, channel="WhatsApp")
    message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)

    # Then the second step sent it by SMS through Octopush, and the report shows both steps' channels
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    workflow = (await api.report(otp_id))["workflow"]
    assert workflow["channel_change"] is True
    assert [(step["channel"], step["vendor"]) for step in workflow["steps"]] == [
        ("WhatsApp", "d7"),
        ("SMS", "octopush"),
    ]


async def test_a_message_the_first_vendor_drops_silently_is_read_out_by_an_octopush_call_after_its_deadline(
    api: Api,
) -> None:
    # Given D7 silently drops every message to +33
    await api.fault("d7", silent_drop_rate=1.0, prefix="+33")
    recipient = number(VOICE)

    # When an OTP is sent by SMS to a number of the voice workflow (D7, 3 s, then a call by the country route)
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)

    # Then Octopush called the phone (voice_sms), D7 was passed over for the call, never asked to degrade it,
    # the code read out verifies, and the report shows the step on the voice channel
    assert (message["vendor"], message["channel"]) == ("octopush", "voice_sms")
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    report = await api.report(otp_id)
    steps = [(step["step"], step["channel"], step["vendor"], step["outcome"]) for step in report["workflow"]["steps"]]
    assert steps == [(0, "SMS", "d7", "DEADLINE"), (1, "voice", "octopush", "VERIFIED")]
    assert report["workflow"]["channel_change"] is True
    step_1 = [(a["vendor"], a["error_code"]) for a in report["attempts"] if a["step"] == 1]
    assert step_1 == [("d7", "CANNOT_HONOUR"), ("octopush", None)]


async def test_a_vendor_silent_for_40_percent_of_indian_numbers_loses_no_otp_to_the_deadline(api: Api) -> None:
    # Given D7 accepts every message to +91 and silently drops 40% of them (no phone, no receipt, its status "sent")
    await api.fault("d7", silent_drop_rate=DROP_RATE, prefix="+91")
    recipients = [number(INDIA, INDIA_DIGITS) for _ in range(INDIA_OTPS)]

    # When an OTP is sent to each of 50 Indian mobiles (the default workflow: D7, 3 s, then Octopush)
    otp_ids = [await api.send(recipient=recipient) for recipient in recipients]

    # Then every OTP reached its phone exactly once: by D7 (a delivered receipt, the workflow stopped) or, for each
    # message D7 dropped, by Octopush after the deadline; every code verifies; D7 dropped about 40% of them
    dropped = 0
    for otp_id, recipient in zip(otp_ids, recipients, strict=True):
        message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)
        report = await wait_for(lambda otp_id=otp_id: step_settled(api, otp_id), MARGIN)
        steps = [(step["vendor"], step["receipt"], step["outcome"]) for step in report["workflow"]["steps"]]
        if message["vendor"] == "d7":
            assert steps == [("d7", "DELIVERED", "DELIVERED")], report
        else:
            dropped += 1
            assert message["vendor"] == "octopush"
            assert steps[0] == ("d7", "NONE", "DEADLINE"), report
            assert [step[0] for step in steps] == ["d7", "octopush"], report
        assert [m["vendor"] for m in await api.messages(recipient)] == [message["vendor"]]
        assert await api.verify(otp_id, message["code"]) == "APPROVED"
    assert abs(dropped / INDIA_OTPS - DROP_RATE) <= DROP_TOLERANCE, dropped
    assert (await api.calls())["octopush"]["generate"] == dropped


async def test_the_first_steps_vendor_code_still_verifies_after_the_next_step_went_to_another_vendor(api: Api) -> None:
    # Given D7 delivers its own code but its receipt never comes, so the deadline sends Octopush's own code too
    await api.fault("d7", no_receipt_rate=1.0, prefix="+33")
    recipient = number(FAST)
    otp_id = await api.send(recipient=recipient)

    async def both_delivered() -> list[dict[str, Any]] | None:
        messages = await api.messages(recipient)
        return messages if len(messages) == 2 else None

    first, second = await wait_for(both_delivered, DEADLINE + MARGIN)
    assert (first["vendor"], second["vendor"]) == ("d7", "octopush")

    # When the user types the FIRST code, D7's
    status = await api.verify(otp_id, first["code"])

    # Then it is approved (checked with D7, after Octopush refused it), and the conversion is D7's attempt
    assert status == "APPROVED"
    report = await api.report(otp_id)
    assert (report["converted_by"]["vendor"], report["converted_by"]["step"]) == ("d7", 0)
    assert await api.verify(otp_id, second["code"]) == "ALREADY_VERIFIED"
