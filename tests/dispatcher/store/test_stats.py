"""Outcome counters by route, per minute, on real Redis: each event script counts its event in the minute it
happened, for the attempt's vendor, channel and country, and a minute's counters go once kept long enough."""

import math
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import redis

from config.settings import OTHER_COUNTRY
from dispatcher import codes
from dispatcher.constants import STATS_KEEP, STATS_PREFIX
from dispatcher.schemas import Attempt, AttemptOutcome, ReceiptStatus
from dispatcher.store import Marked, OtpStore, RouteStats
from tests.dispatcher.store.otps import KEY, new, verify
from vendors.receipts import Receipt, ReceiptOutcome

MINUTE = 60.0
AT = math.floor(datetime.now(tz=UTC).timestamp() / MINUTE) * MINUTE + 10
"""Ten seconds into the current minute: the events of these tests happen at ``AT`` and shortly after."""


def vendor() -> str:
    """A vendor name of this test's own, so the counters of other tests (same Redis) do not mix in."""
    return f"v{uuid.uuid4().hex[:12]}"


def accepted_at(name: str, at: float, send_number: int = 1, channel: str | None = None) -> Attempt:
    """An attempt ``name`` accepted at ``at`` (its call took 250 ms)."""
    return Attempt(
        send_number=send_number,
        vendor=name,
        started_at=datetime.fromtimestamp(at - 0.25, tz=UTC),
        latency_ms=250.0,
        outcome=AttemptOutcome.DELIVERED,
        channel=channel,
    )


async def sent(store: OtpStore, name: str, at: float = AT, code: str = "123456", reference: str = "") -> str:
    """An OTP to a +33 number whose code ``name`` accepted at ``at``."""
    otp = replace(new(), country="+33", created_at=at)
    await store.create(otp)
    await store.add_code_hash(otp.otp_id, codes.digest(KEY, otp.otp_id, code), 1, name)
    await store.mark_delivered(otp.otp_id, 1, "", accepted_at(name, at), receipt_reference=reference or None)
    return otp.otp_id


async def route(store: OtpStore, name: str, now: float, minutes: int = 60) -> RouteStats:
    [found] = [stats for stats in await store.route_stats(now, minutes) if stats.route.vendor == name]
    return found


async def test_an_accepted_attempt_counts_one_send_for_its_vendor_channel_and_country(store: OtpStore) -> None:
    # Given two OTPs to +33 numbers that one vendor accepted
    name = vendor()
    await sent(store, name)
    await sent(store, name)

    # When the last hour is read
    stats = await route(store, name, AT + 1)

    # Then the route (vendor, SMS asked for, +33) counts two sends and nothing else
    assert (stats.route.channel, stats.route.country) == ("SMS", "+33")
    assert (stats.sent, stats.delivered, stats.undelivered, stats.converted, stats.expired) == (2, 0, 0, 0, 0)


async def test_a_workflow_steps_channel_is_the_routes_channel(store: OtpStore) -> None:
    # Given an attempt of a workflow step that went out by WhatsApp
    name, otp = vendor(), new()
    await store.create(otp)
    await store.mark_delivered(otp.otp_id, 1, "", accepted_at(name, AT, channel="WhatsApp"))

    # Then it counts under WhatsApp, and the number's country label (none configured here: other)
    stats = await route(store, name, AT + 1)
    assert (stats.route.channel, stats.route.country, stats.sent) == ("WhatsApp", OTHER_COUNTRY, 1)


async def test_counts_land_in_the_minute_of_the_event_and_windows_sum_their_minutes(store: OtpStore) -> None:
    # Given sends by one vendor now, 2 minutes ago and 90 minutes ago
    name = vendor()
    for ago in (0, 2 * MINUTE, 90 * MINUTE):
        await sent(store, name, AT - ago)

    # Then the last minute holds one, the last 3 minutes two, the last hour two and the last day three
    assert [(await route(store, name, AT + 1, minutes)).sent for minutes in (1, 3, 60, 1440)] == [1, 2, 2, 3]


async def test_a_minutes_counters_expire_a_keep_after_that_minute_ends(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given a send now
    name = vendor()
    await sent(store, name)

    # Then its minute's hash is kept STATS_KEEP seconds past the end of the minute
    minute = math.floor(AT / MINUTE)
    expires_in = redis_client.ttl(f"{STATS_PREFIX}{minute}")
    assert abs(expires_in - ((minute + 1) * MINUTE + STATS_KEEP - datetime.now(tz=UTC).timestamp())) <= 2


async def test_counts_older_than_the_keep_are_gone(store: OtpStore, redis_client: redis.Redis) -> None:
    # Given a send accepted longer ago than a minute's counters are kept (a write Redis was away for, made late)
    name = vendor()
    long_ago = AT - STATS_KEEP - 2 * MINUTE
    await sent(store, name, long_ago)

    # Then its minute holds nothing: the counters are gone at once
    assert redis_client.exists(f"{STATS_PREFIX}{math.floor(long_ago / MINUTE)}") == 0


async def test_the_first_receipt_with_evidence_counts_once_and_a_none_receipt_not_at_all(store: OtpStore) -> None:
    # Given two OTPs whose vendor sends receipts
    name, first, second = vendor(), uuid.uuid4().hex, uuid.uuid4().hex
    await sent(store, name, reference=first)
    await sent(store, name, reference=second)

    # When one gets NONE then DELIVERED twice, the other UNDELIVERED
    await store.record_receipt(name, Receipt(first, ReceiptOutcome.NONE, "UNKNOWN"), AT + 1)
    await store.record_receipt(name, Receipt(first, ReceiptOutcome.DELIVERED, "DELIVERED"), AT + 2)
    await store.record_receipt(name, Receipt(first, ReceiptOutcome.DELIVERED, "DELIVERED"), AT + 3)
    answer = await store.record_receipt(name, Receipt(second, ReceiptOutcome.UNDELIVERED, "NOT_DELIVERED"), AT + 4)

    # Then one delivered and one undelivered count, and the answer names the route for the API's metric
    stats = await route(store, name, AT + 5)
    assert (stats.sent, stats.delivered, stats.undelivered) == (2, 1, 1)
    assert (answer.channel, answer.country) == ("SMS", "+33")


async def test_a_receipt_that_came_before_its_attempt_counts_when_the_attempt_takes_it(store: OtpStore) -> None:
    # Given a delivered receipt for a reference no attempt names yet
    name, reference = vendor(), uuid.uuid4().hex
    await store.record_receipt(name, Receipt(reference, ReceiptOutcome.DELIVERED, "DELIVERED"), AT)

    # When the attempt is logged
    otp = replace(new(), country="+33")
    await store.create(otp)
    marked = await store.mark_delivered(otp.otp_id, 1, "", accepted_at(name, AT), receipt_reference=reference)

    # Then the receipt counts once, for the attempt's route, and the worker is told (for its metric)
    stats = await route(store, name, AT + 1)
    assert (stats.sent, stats.delivered) == (1, 1)
    assert marked == Marked(delivered=True, early_receipt=ReceiptStatus.DELIVERED)


async def test_a_conversion_counts_with_its_whole_seconds_from_acceptance_and_the_median_of_them(
    store: OtpStore,
) -> None:
    # Given three OTPs accepted at AT, verified 7.9, 12.5 and 30.2 seconds later
    name = vendor()
    for delay in (7.9, 12.5, 30.2):
        otp_id = await sent(store, name)
        await verify(store, otp_id, "123456", AT + delay)

    # Then the route counts three conversions, and the median time to verify is the middle one's whole seconds
    stats = await route(store, name, AT + 31)
    assert (stats.sent, stats.converted) == (3, 3)
    assert dict(stats.verify_seconds) == {7: 1, 12: 1, 30: 1}
    assert stats.median_verify_seconds == 12.0


async def test_a_conversion_the_vendor_checked_counts_for_that_vendor(store: OtpStore) -> None:
    # Given an OTP whose code the vendor generated and checks, accepted at AT
    name, otp = vendor(), new()
    await store.create(otp)
    await store.mark_delivered(otp.otp_id, 1, "vendor-ref", accepted_at(name, AT))
    ticket = await store.verify(otp.otp_id, "digest", AT + 20.5)

    # When the vendor approves it 20.5 s after accepting it
    await store.settle_vendor_verify(otp.otp_id, "digest", ticket, ticket.checks[0], AT + 20.5)

    # Then the conversion counts for that vendor, 20 whole seconds
    stats = await route(store, name, AT + 21)
    assert (stats.converted, dict(stats.verify_seconds)) == (1, {20: 1})


async def test_a_wrong_code_counts_no_conversion(store: OtpStore) -> None:
    name = vendor()
    otp_id = await sent(store, name)

    await verify(store, otp_id, "000000", AT + 5)

    stats = await route(store, name, AT + 6)
    assert (stats.converted, stats.median_verify_seconds) == (0, None)
