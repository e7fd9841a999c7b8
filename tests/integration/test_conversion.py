"""Conversion whole-stack: the sandbox phone types every code it receives into the bench's receiver, which verifies
it; with a workflow every OTP whose first vendor drops it silently still converts, without one none does.

A stack of its own (its own Redis, sandbox, API and worker) with one workflow, ``failover`` (D7, a 3 s deadline,
then Octopush by SMS), for ``WORKFLOW`` numbers; ``PLAIN`` numbers follow the chain of today (no workflow).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from bench.conversion import Phone
from tests.support import Api, Stack, own_stack, stack_api, wait_for

WORKFLOW = "+33622"
PLAIN = "+33633"
DELIVERED = "+33644"
DEADLINE = 3.0
OTPS = 10
PHONE_DELAY_MS = [300, 300]
"""One delay for every code: the phone types them in the order they reached it."""
MARGIN = 10.0
"""Seconds past the deadline within which every second step's code is typed and verified (a loaded 2-core machine)."""
WORKFLOWS = {"failover": {"steps": [{"vendor": "d7", "deadline": DEADLINE}, {"channel": "SMS", "vendor": "octopush"}]}}


def numbers(prefix: str) -> list[str]:
    return [prefix + "".join(secrets.choice("0123456789") for _ in range(6)) for _ in range(OTPS)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {"OTP_WORKFLOWS": json.dumps(WORKFLOWS), "OTP_WORKFLOW_ROUTES": json.dumps({WORKFLOW: "failover"})}
    with own_stack(tmp_path_factory, "conversion", **overrides) as started:
        yield started


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack_api(stack) as api:
        stack.point_octopush_receipts()
        yield api


@pytest.fixture
async def phone(api: Api, stack: Stack) -> AsyncIterator[Phone]:
    """The receiver the sandbox phone types into (it verifies each code), with the phone pointed at it."""
    async with Phone(stack.api_url, stack.token, api.session).running() as receiver:
        settings = {"url": receiver.url, "token": receiver.token, "delay_ms": PHONE_DELAY_MS}
        async with api.session.put(f"{stack.sandbox_url}/_sandbox/phone", json=settings) as answer:
            assert answer.status == 200, await answer.text()
        yield receiver


async def send(api: Api, phone: Phone, recipient: str) -> str:
    phone.expect(recipient)
    otp_id = await api.send(recipient=recipient)
    phone.expect(recipient).set_result(otp_id)
    return otp_id


async def converted(phone: Phone, recipients: list[str]) -> bool | None:
    return True if all(recipient in phone.approved_at for recipient in recipients) else None


async def test_with_the_workflow_every_otp_the_first_vendor_drops_silently_converts(api: Api, phone: Phone) -> None:
    # Given D7 silently drops every message to +33 (accepted, never delivered, no receipt)
    await api.fault("d7", silent_drop_rate=1.0, prefix="+33")
    recipients = numbers(WORKFLOW)

    # When 10 OTPs are sent to numbers of the workflow (D7, 3 s, then Octopush)
    otp_ids = [await send(api, phone, recipient) for recipient in recipients]

    # Then the phone typed each code Octopush delivered after the deadline, and all 10 converted
    await wait_for(lambda: converted(phone, recipients), DEADLINE + MARGIN)
    assert {recipient: phone.answers[recipient] for recipient in recipients} == {r: ["APPROVED"] for r in recipients}
    for otp_id in otp_ids:
        report = await api.report(otp_id)
        steps = [(step["vendor"], step["outcome"]) for step in report["workflow"]["steps"]]
        assert steps == [("d7", "DEADLINE"), ("octopush", "VERIFIED")], report
        assert report["delivered_by"] == "octopush"


async def test_with_the_plain_chain_the_otps_the_first_vendor_drops_silently_never_convert(
    api: Api, phone: Phone
) -> None:
    # Given D7 silently drops every message to the plain numbers, and delivers the others
    await api.fault("d7", silent_drop_rate=1.0, prefix=PLAIN)
    recipients = numbers(PLAIN)

    # When 10 OTPs are sent to plain numbers (no workflow), D7 accepts each, and then one goes to a number D7 delivers
    otp_ids = [await send(api, phone, recipient) for recipient in recipients]
    for otp_id in otp_ids:
        await api.delivered(otp_id)
    [control] = numbers(DELIVERED)[:1]
    await send(api, phone, control)

    # Then the phone typed and converted that last one, and none of the 10 before it (typed in order, none came)
    await wait_for(lambda: converted(phone, [control]), MARGIN)
    assert not any(recipient in phone.answers for recipient in recipients)
    for recipient, otp_id in zip(recipients, otp_ids, strict=True):
        assert await api.messages(recipient) == []
        report = await api.report(otp_id)
        assert [(attempt["vendor"], attempt["receipt"]) for attempt in report["attempts"]] == [("d7", "NONE")]
        assert report["status"] == "OPEN"
