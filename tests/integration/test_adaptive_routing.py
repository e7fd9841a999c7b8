"""Adaptive routing whole-stack: the sandbox phone types every code it receives into the bench's receiver (which
verifies it), the dispatcher learns from the conversions which vendor gets codes typed in each country, and sends
each country's first attempts there.

A stack of its own (its own Redis, sandbox, API and worker) with the chain [d7, octopush]: d7 silently drops 30% of
the +33 messages and octopush 30% of the +44 ones. ``ADAPTIVE`` ranges follow the adaptive policy, ``STATIC`` ranges
the chain (``ordered``); both feed the same evidence (the country's), sent in the same rounds.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bench.conversion import Phone
from tests.support import Api, Stack, own_stack, stack_api, wait_for

pytestmark = pytest.mark.slow

ADAPTIVE = {"+33": "+33612", "+44": "+447400"}
STATIC = {"+33": "+33751", "+44": "+447912"}
GOOD = {"+33": "octopush", "+44": "d7"}
DROP = 0.3
WARM_UP_ROUNDS = 35
MEASURED_ROUNDS = 60
ROUND_SECONDS = 0.3
"""Each round sends one OTP to each of the four groups (adaptive and static, +33 and +44): 13 OTPs a second."""
PHONE_DELAY_MS = [200, 400]
ROUTING = {"window": 120, "conversion_wait": 2, "exploration": 0.05, "min_trials": 5, "floor_share": 0.1}
POLICIES = {prefix: {"policy": "adaptive"} for prefix in ADAPTIVE.values()}
TYPED_WITHIN = 20.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {"OTP_ROUTES": "{}", "OTP_ROUTE_POLICIES": json.dumps(POLICIES), "OTP_ROUTING": json.dumps(ROUTING)}
    with own_stack(tmp_path_factory, "adaptive", chain=("d7", "octopush"), **overrides) as started:
        yield started


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack_api(stack) as api:
        yield api


LENGTH = {"+33": 12, "+44": 13}
"""Characters of a number of each country, + included."""


def number(country: str, prefix: str) -> str:
    return prefix + "".join(random.choice("0123456789") for _ in range(LENGTH[country] - len(prefix)))


async def test_adaptive_routing_sends_each_countrys_first_attempts_to_the_vendor_that_converts(
    api: Api, stack: Stack
) -> None:
    # Given d7 drops 30% of +33 messages and octopush 30% of +44 ones, and the phone types every code it gets
    await api.fault("d7", silent_drop_rate=DROP, prefix="+33")
    await api.fault("octopush", silent_drop_rate=DROP, prefix="+44")
    async with Phone(stack.api_url, stack.token, api.session).running() as phone:
        settings = {"url": phone.url, "token": phone.token, "delay_ms": PHONE_DELAY_MS}
        async with api.session.put(f"{stack.sandbox_url}/_sandbox/phone", json=settings) as answer:
            assert answer.status == 200, await answer.text()

        # When OTPs go to every group in rounds, a warm-up first, then the rounds measured
        sent: list[tuple[str, str, str, bool, str]] = []  # (country, policy, recipient, measured, otp_id)
        started = time.monotonic()
        for index in range(WARM_UP_ROUNDS + MEASURED_ROUNDS):
            await asyncio.sleep(max(0.0, started + index * ROUND_SECONDS - time.monotonic()))
            for country in ("+33", "+44"):
                for policy, ranges in (("adaptive", ADAPTIVE), ("ordered", STATIC)):
                    recipient = number(country, ranges[country])
                    phone.expect(recipient)
                    otp_id = await api.send(recipient=recipient)
                    phone.expect(recipient).set_result(otp_id)
                    sent.append((country, policy, recipient, index >= WARM_UP_ROUNDS, otp_id))
        reports = {otp_id: await api.delivered(otp_id) for *_, otp_id in sent}
        reached = {recipient for _, _, recipient, _, _ in sent if await api.messages(recipient)}
        await wait_for(lambda: _all_in(reached, phone.approved_at), TYPED_WITHIN)

    # Then every OTP whose code reached the phone converted once, by its first (and only) attempt; none other did
    for country, policy, recipient, _, otp_id in sent:
        report = await api.report(otp_id)
        [attempt] = report["attempts"]
        assert attempt["routing"]["policy"] == policy, report
        assert attempt["routing"]["rank"] == 1
        if recipient in reached:
            assert phone.answers[recipient] == ["APPROVED"]
            assert report["status"] == "VERIFIED"
            assert report["converted_by"] == attempt
        else:
            assert recipient not in phone.answers
            assert attempt["vendor"] == ("d7" if country == "+33" else "octopush")
            assert (report["status"], report["converted_by"]) == ("OPEN", None)

    # And after the warm-up, most adaptive first attempts of each country went to the vendor that converts, and the
    # adaptive first attempts converted more often than the static chain's
    measured = [(c, p, r, reports[o]["attempts"][0]) for c, p, r, m, o in sent if m]
    to_good = {}
    for country in ("+33", "+44"):
        adaptive = [attempt for c, p, _, attempt in measured if c == country and p == "adaptive"]
        to_good[country] = sum(attempt["vendor"] == GOOD[country] for attempt in adaptive)
        assert to_good[country] >= 0.7 * len(adaptive), (country, to_good[country], len(adaptive))
    conversion = {
        policy: _share([r in reached for _, p, r, _ in measured if p == policy]) for policy in ("adaptive", "ordered")
    }
    print("adaptive routing:", json.dumps({"first_attempts_to_the_good_vendor": to_good, "conversion": conversion}))
    assert conversion["adaptive"] > conversion["ordered"] + 0.05, conversion


async def _all_in(recipients: set[str], approved: dict[str, Any]) -> bool | None:
    return True if recipients <= set(approved) else None


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)
