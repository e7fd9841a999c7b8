"""Stats whole-stack: OTPs sent through the sandbox, some verified, one left to expire; the stats route and the
metrics then show each route's figures as an operator reads them.

A stack of its own (its own Redis, sandbox, API and worker), so its figures are this test's alone: French numbers
go to D7 (the dev chain's first vendor), British ones to Octopush; both vendors send delivered receipts.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.support import Api, Stack, own_stack, random_number, scrape, stack_api, wait_for

pytestmark = pytest.mark.slow

EXPIRY = 2
"""Seconds the OTP left to expire lives."""
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    routes = json.dumps({"+91": ["messagecentral"], "+44": ["octopush"]})
    with own_stack(tmp_path_factory, "stats", OTP_ROUTES=routes) as started:
        yield started


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack_api(stack) as api:
        stack.point_octopush_receipts()
        yield api


def british_number() -> str:
    return "+447400" + "".join(secrets.choice("0123456789") for _ in range(6))


async def delivered_with_receipt(api: Api, recipient: str, **fields: Any) -> tuple[str, float]:
    """An OTP sent to ``recipient``, once its vendor accepted it and its delivered receipt came back; with when the
    vendor accepted it."""
    otp_id = await api.send(recipient=recipient, **fields)

    async def receipted() -> dict[str, Any] | None:
        report = await api.report(otp_id)
        return report if [a["receipt"] for a in report["attempts"]] == ["DELIVERED"] else None

    [attempt] = (await wait_for(receipted))["attempts"]
    return otp_id, datetime.fromisoformat(attempt["started_at"]).timestamp() + attempt["latency_ms"] / 1000


async def verified(api: Api, otp_id: str, recipient: str, accepted: float) -> tuple[int, int]:
    """Verify the code the phone got; the bounds of its whole seconds from acceptance to approval."""
    code = (await api.inbox(recipient))["code"]
    before = time.time()
    assert await api.verify(otp_id, code) == "APPROVED"
    return math.floor(before - accepted), math.floor(time.time() - accepted)


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def stats(api: Api, window: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The stats route's figures over ``window``, by (vendor, channel, country)."""
    status, answer = await api.get(f"/stats/v1/routes?window={window}")
    assert status == 200, answer
    assert answer["window"] == window
    return {(r.pop("vendor"), r.pop("channel"), r.pop("country")): r for r in answer["routes"]}


async def test_the_stats_route_and_the_metrics_show_each_routes_sends_receipts_conversions_and_expiries(
    api: Api, stack: Stack
) -> None:
    # Given four French OTPs D7 took and one British OTP Octopush took, each with its delivered receipt; the last
    # French one expires in 2 s
    french, british = [random_number() for _ in range(4)], british_number()
    sent = [await delivered_with_receipt(api, recipient) for recipient in french[:3]]
    left, _ = await delivered_with_receipt(api, french[3], expiry=EXPIRY)
    british_otp, british_accepted = await delivered_with_receipt(api, british)

    # When the first two French OTPs and the British one are verified with the codes their phones got, the third
    # French one is not (yet), and the last expires unverified
    french_times = [
        await verified(api, otp_id, recipient, at) for (otp_id, at), recipient in zip(sent[:2], french[:2], strict=True)
    ]
    british_time = await verified(api, british_otp, british, british_accepted)

    async def debited() -> dict[tuple[str, str, str], dict[str, Any]] | None:
        figures = await stats(api, "hour")
        return figures if figures[("d7", "SMS", "+33")]["expired_unconverted"] else None

    hour = await wait_for(debited)

    # Then the stats route shows, for the last hour and the last day, D7's French route and Octopush's British one
    assert (await api.report(left))["status"] == "EXPIRED"
    d7_median = hour[("d7", "SMS", "+33")].pop("median_verify_seconds")
    octopush_median = hour[("octopush", "SMS", "+44")].pop("median_verify_seconds")
    assert sum(low for low, _ in french_times) / 2 <= d7_median <= sum(high for _, high in french_times) / 2
    assert british_time[0] <= octopush_median <= british_time[1]
    assert hour == {
        ("d7", "SMS", "+33"): {
            "sends": 4,
            "delivered_receipts": 4,
            "undelivered_receipts": 0,
            "conversions": 2,
            "conversion_rate": 0.5,
            "expired_unconverted": 1,
        },
        ("octopush", "SMS", "+44"): {
            "sends": 1,
            "delivered_receipts": 1,
            "undelivered_receipts": 0,
            "conversions": 1,
            "conversion_rate": 1.0,
            "expired_unconverted": 0,
        },
    }
    day = await stats(api, "day")
    assert {route: figures.pop("median_verify_seconds") for route, figures in day.items()} == {
        ("d7", "SMS", "+33"): d7_median,
        ("octopush", "SMS", "+44"): octopush_median,
    }
    assert day == hour

    # And the metrics say the same: sends and expiries from the worker, conversions from the API, receipts from both
    # (the API counts those it records, the worker those that came before their attempt was logged)
    worker = await scrape(f"http://127.0.0.1:{stack.env['OTP_WORKER_METRICS_PORT']}/metrics")
    api_side = await scrape(stack.api_url + "/metrics")
    for vendor, country, sends, conversions, expired in (("d7", "+33", 4, 2, 1), ("octopush", "+44", 1, 1, 0)):
        route = {"vendor": vendor, "channel": "SMS", "country": country}
        receipts = sum(
            sample(samples, "otp_route_receipts_total", **route, receipt="DELIVERED") for samples in (worker, api_side)
        )
        assert sample(worker, "otp_route_sends_total", **route) == sends
        assert receipts == sends
        assert sample(api_side, "otp_conversions_total", **route) == conversions
        assert sample(worker, "otp_expired_unconverted_total", **route) == expired
        assert conversions / sends == hour[(vendor, "SMS", country)]["conversion_rate"]
