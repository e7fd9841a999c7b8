"""Receipt polling whole-stack: the callbacks are lost (the dispatcher's callback URL is unreachable from the
vendors), and at a step's deadline the worker asks D7's delivery status once before deciding.

A stack of its own (its own Redis, sandbox, API and worker) whose ``OTP_CALLBACK_URL`` names a port nothing listens
on, so D7's postbacks never arrive; every number follows ``default``: D7 on send-otp's channel with a 3 s deadline,
then Octopush by SMS.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.processes import free_port
from tests.support import (
    Api,
    Stack,
    delivered_to_phone,
    number,
    own_stack,
    scrape,
    stack_api,
    wait_for,
)

pytestmark = pytest.mark.slow

PREFIX = "+33655"
DEADLINE = 3.0
MARGIN = 6.0
"""Seconds past a deadline within which the next step's message reaches the phone (a loaded 2-core machine)."""
WORKFLOWS = {"default": {"steps": [{"vendor": "d7", "deadline": DEADLINE}, {"channel": "SMS", "vendor": "octopush"}]}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "OTP_WORKFLOWS": json.dumps(WORKFLOWS),
        "OTP_CALLBACK_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: every postback is lost
    }
    with own_stack(tmp_path_factory, "polling", **overrides) as started:
        yield started


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack_api(stack) as api:
        yield api


async def d7_receipts_lost(api: Api, count: int) -> bool | None:
    """True once D7 has tried (and failed) to post ``count`` receipts to the dispatcher, every time."""
    async with api.session.get(f"{api.stack.sandbox_url}/_sandbox/receipts") as response:
        receipts = (await response.json())["receipts"]
    tried = [receipt for receipt in receipts if receipt["vendor"] == "d7" and receipt["attempts"] >= 1]
    return True if len(tried) >= count and not any(receipt["acknowledged"] for receipt in tried) else None


async def worker_metrics(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return await scrape(f"http://127.0.0.1:{stack.env['OTP_WORKER_METRICS_PORT']}/metrics")


async def test_a_poll_at_the_deadline_finds_the_message_delivered_and_no_second_step_goes_out(api: Api) -> None:
    # Given D7 delivers the message but its postback never reaches the dispatcher
    recipient = number(PREFIX)
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, MARGIN)
    assert await wait_for(lambda: d7_receipts_lost(api, 1), MARGIN)

    # When the step's deadline passes (the worker polls D7's delivery status then)
    async def step_decided() -> dict[str, object] | None:
        report = await api.report(otp_id)
        first = report["workflow"]["steps"][0]
        return report if first["receipt"] != "NONE" else None

    report = await wait_for(step_decided, DEADLINE + MARGIN)

    # Then the attempt's receipt is DELIVERED, from the poll, the workflow stopped: Octopush was never called, the
    # phone has D7's message alone, and its code verifies
    attempt = report["attempts"][0]
    assert (attempt["vendor"], attempt["receipt"], attempt["receipt_status"]) == ("d7", "DELIVERED", "delivered")
    assert attempt["receipt_latency_ms"] >= DEADLINE * 1000
    assert report["workflow"]["steps"] == [
        {"send_number": 1, "step": 0, "channel": "SMS", "vendor": "d7", "receipt": "DELIVERED", "outcome": "DELIVERED"}
    ]
    assert (await api.calls()).get("octopush", {}).get("generate", 0) == 0
    assert [m["vendor"] for m in await api.messages(recipient)] == ["d7"]
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    metrics = await worker_metrics(api.stack)
    assert metrics[("otp_receipt_polls_total", (("receipt", "DELIVERED"), ("vendor", "d7")))] >= 1
    assert metrics[("otp_receipt_latency_seconds_count", (("channel", "SMS"), ("vendor", "d7")))] >= 1


async def test_a_poll_at_the_deadline_that_finds_the_message_undelivered_sends_the_next_step(api: Api) -> None:
    # Given D7 fails to deliver every message to the prefix, and its failure postback never reaches the dispatcher
    await api.fault("d7", undelivered_rate=1.0, prefix=PREFIX)
    recipient = number(PREFIX)

    # When an OTP is sent and its step's deadline passes
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)

    # Then the poll recorded D7's failure as the attempt's receipt, the next step went out through Octopush on it,
    # and Octopush's code verifies
    assert message["vendor"] == "octopush"
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    report = await api.report(otp_id)
    first = report["attempts"][0]
    assert (first["vendor"], first["receipt"], first["receipt_reason"]) == ("d7", "UNDELIVERED", "un_delivered")
    steps = [(step["step"], step["vendor"], step["outcome"]) for step in report["workflow"]["steps"]]
    assert steps == [(0, "d7", "UNDELIVERED"), (1, "octopush", "VERIFIED")]
    metrics = await worker_metrics(api.stack)
    assert metrics[("otp_workflow_step_advances_total", (("reason", "UNDELIVERED"),))] >= 1


async def test_a_poll_that_finds_nothing_leaves_the_deadline_to_send_the_next_step(api: Api) -> None:
    # Given D7 silently drops every message to the prefix (its status stays "sent")
    await api.fault("d7", silent_drop_rate=1.0, prefix=PREFIX)
    recipient = number(PREFIX)

    # When an OTP is sent and its step's deadline passes
    otp_id = await api.send(recipient=recipient)
    message = await delivered_to_phone(api, recipient, DEADLINE + MARGIN)

    # Then the attempt has no receipt, the deadline sent the next step, and its code verifies
    assert message["vendor"] == "octopush"
    assert await api.verify(otp_id, message["code"]) == "APPROVED"
    report = await api.report(otp_id)
    assert report["attempts"][0]["receipt"] == "NONE"
    steps = [(step["step"], step["vendor"], step["outcome"]) for step in report["workflow"]["steps"]]
    assert steps == [(0, "d7", "DEADLINE"), (1, "octopush", "VERIFIED")]
