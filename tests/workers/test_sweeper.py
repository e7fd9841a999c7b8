"""The sweeper on real Redis: of two worker processes sweeping at once, one debits each expired OTP, once, and
counts it in its ``otp_expired_unconverted``."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from tests.dispatcher.store.otps import attempt, new
from tests.support import own_database
from workers.metrics import REGISTRY
from workers.sweeper import Sweeper


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[list[OtpStore]]:
    """Two worker processes' stores on the same Redis."""
    opened = [OtpStore(connect(own_database(redis_url), 1.0), Sealer("secret"), grace=60) for _ in range(2)]
    yield opened
    for store in opened:
        await store.close()


def debits(vendor: str) -> float:
    labels = {"vendor": vendor, "channel": "SMS", "country": "+44"}
    return REGISTRY.get_sample_value("otp_expired_unconverted_total", labels) or 0.0


async def test_two_sweepers_at_once_debit_an_expired_otp_once(stores: list[OtpStore]) -> None:
    # Given an OTP to a +44 number that a vendor accepted, whose code expired 10 s ago unverified
    vendor = f"v{uuid.uuid4().hex[:12]}"
    otp = replace(new(expiry=30), country="+44", created_at=time.time() - 40)
    await stores[0].create(otp)
    await stores[0].mark_delivered(otp.otp_id, 1, "", attempt(vendor))
    sweepers = [
        Sweeper(store, 60, 120, lambda: False, lambda lost: None, lambda otp_id, event: None) for store in stores
    ]

    # When two worker processes sweep at the same moment
    await asyncio.gather(*(sweeper.sweep_once() for sweeper in sweepers))

    # Then the vendor's route is debited once, in the metric and in the stats (in the minute the code expired), and
    # no later sweep finds the OTP to debit again
    assert debits(vendor) == 1.0
    [stats] = [stats for stats in await stores[0].route_stats(time.time(), 2) if stats.route.vendor == vendor]
    assert (stats.route.country, stats.sent, stats.expired) == ("+44", 1, 1)
    assert vendor not in {route.vendor for route in await stores[1].sweep_expired(time.time())}
