"""Routing evidence and overrides against the session's real Redis: each piece of evidence is counted where it is
recorded (an attempt accepted, an undelivered receipt, a conversion), for the vendor, country and channel, and an
attempt is a trial only once its outcome is known or its OTP has had the time to convert."""

import uuid
from dataclasses import replace

import pytest
import redis

from dispatcher import codes
from dispatcher.constants import ROUTING_OVERRIDES_KEY, SCORE_BUCKET, SCORES_INDEX, SCORES_PREFIX, prefix_block_key
from dispatcher.store import Action, Evidence, OtpStore, Override
from dispatcher.store.scores import tally
from tests.dispatcher.store.otps import KEY, NOW, attempt, new, verify
from vendors.receipts import Receipt, ReceiptOutcome

WINDOW = 600.0
WAIT = 60.0
FRESH = NOW + 1
"""A reading while the OTPs of ``NOW`` are younger than the conversion wait..."""
MATURE = NOW + WAIT + SCORE_BUCKET
"""...and one once they have all had it."""


def vendor() -> str:
    """A vendor name of the test's own (the evidence hashes are shared by the database's tests)."""
    return f"v{uuid.uuid4().hex[:12]}"


async def accepted(store: OtpStore, name: str, code: str = "123456", *, reference: str = "") -> str:
    """An OTP to a +33 number whose first send ``name`` accepted with ``code``."""
    otp = replace(new(), country="+33")
    await store.create(otp)
    await store.add_code_hash(otp.otp_id, codes.digest(KEY, otp.otp_id, code), 1, name)
    await store.mark_delivered(otp.otp_id, 1, "", attempt(name), receipt_reference=reference or None)
    return otp.otp_id


async def evidence(store: OtpStore, name: str, now: float) -> Evidence:
    found = await store.evidence(WINDOW, WAIT, now)
    return found.get(("+33", "SMS", name), Evidence())


async def test_an_accepted_attempt_is_pending_until_its_otp_has_had_the_time_to_convert(store: OtpStore) -> None:
    # Given two attempts a vendor accepted, for OTPs of +33 by SMS
    name = vendor()
    await accepted(store, name)
    await accepted(store, name)

    # Then they are sent but no trial while fresh, and two failures once their OTPs are past the conversion wait
    assert await evidence(store, name, FRESH) == Evidence(successes=0, failures=0, sent=2)
    assert await evidence(store, name, MATURE) == Evidence(successes=0, failures=2, sent=2)


async def test_a_conversion_is_a_success_at_once_for_the_vendor_that_carried_the_code(store: OtpStore) -> None:
    # Given two attempts a vendor accepted
    name = vendor()
    otp_id = await accepted(store, name, "123456")
    await accepted(store, name)

    # When the first one's code is verified
    await verify(store, otp_id, "123456")

    # Then it is a success at once; the other stays pending until its OTP had the time
    assert await evidence(store, name, FRESH) == Evidence(successes=1, failures=0, sent=2)
    assert await evidence(store, name, MATURE) == Evidence(successes=1, failures=1, sent=2)


async def test_an_undelivered_receipt_is_a_failure_at_once(store: OtpStore) -> None:
    # Given an attempt whose receipts name a reference
    name, reference = vendor(), f"ref-{uuid.uuid4().hex}"
    await accepted(store, name, reference=reference)

    # When its receipt says undelivered
    await store.record_receipt(name, Receipt(reference, ReceiptOutcome.UNDELIVERED, "FAILED"), NOW + 2)

    # Then it is a failure at once, and still one failure (not two) once its OTP is past the wait
    assert await evidence(store, name, FRESH) == Evidence(successes=0, failures=1, sent=1)
    assert await evidence(store, name, MATURE) == Evidence(successes=0, failures=1, sent=1)


async def test_nothing_counts_for_a_number_range_the_pumping_guard_blocks(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given the range of the OTPs' numbers is blocked by the pumping guard
    name = vendor()
    redis_client.set(prefix_block_key(new().prefix), "1", ex=60)
    try:
        # When an attempt is accepted and its code verified
        otp_id = await accepted(store, name, "123456")
        await verify(store, otp_id, "123456")
    finally:
        redis_client.delete(prefix_block_key(new().prefix))

    # Then the vendor has no evidence from it
    assert await evidence(store, name, MATURE) == Evidence()


async def test_evidence_is_kept_by_country_channel_and_vendor(store: OtpStore, redis_client: redis.Redis) -> None:
    # Given an attempt accepted for a +44 OTP by WhatsApp
    name = vendor()
    otp = replace(new(channel="WhatsApp"), country="+44")
    await store.create(otp)
    await store.mark_delivered(otp.otp_id, 1, "", attempt(name))

    # Then it counts under +44, WhatsApp and the vendor only
    found = await store.evidence(WINDOW, WAIT, FRESH)
    assert found[("+44", "WhatsApp", name)] == Evidence(sent=1)
    assert ("+33", "SMS", name) not in found
    assert redis_client.ttl(f"{SCORES_PREFIX}+44:WhatsApp:{name}") > 0


async def test_buckets_the_window_left_behind_are_forgotten_and_deleted(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given an attempt accepted
    name = vendor()
    await accepted(store, name)
    key = f"{SCORES_PREFIX}+33:SMS:{name}"

    # When the evidence is read a window later
    later = await evidence(store, name, NOW + WINDOW + SCORE_BUCKET)

    # Then it counts nothing, its bucket is deleted, and the emptied hash leaves the index at the next read
    assert later == Evidence()
    assert redis_client.hlen(key) == 0
    await store.evidence(WINDOW, WAIT, NOW + WINDOW + SCORE_BUCKET)
    assert not redis_client.sismember(SCORES_INDEX, key)


@pytest.mark.parametrize(
    ("counts", "now", "expected"),
    [
        ({"1000:s": "10", "1000:c": "7", "1000:u": "2"}, 1005.0, Evidence(7, 2, 10)),
        ({"1000:s": "10", "1000:c": "7", "1000:u": "2"}, 1010.0 + WAIT, Evidence(7, 3, 10)),
        ({"1000:s": "10", "1000:c": "7"}, 1010.0 + WINDOW, Evidence(0, 0, 0)),
        ({"1500:s": "4", "1500:c": "1", "2000:s": "2", "2000:u": "1"}, 2001.0, Evidence(1, 4, 6)),
    ],
    ids=["fresh: known outcomes only", "mature: every attempt", "past the window", "one of each"],
)
def test_the_tally_of_a_hash(counts: dict[str, str], now: float, expected: Evidence) -> None:
    assert tally(counts, now, WINDOW, WAIT) == expected


async def test_overrides_are_set_listed_and_lifted(store: OtpStore, redis_client: redis.Redis) -> None:
    redis_client.delete(ROUTING_OVERRIDES_KEY)
    pin = Override("+33", "SMS", "d7", Action.PIN)
    ban = Override("+44", "*", "octopush", Action.BAN)

    await store.set_override(pin)
    await store.set_override(ban)

    assert await store.overrides() == [pin, ban]
    assert await store.delete_override("+33", "SMS", "d7") is True
    assert await store.delete_override("+33", "SMS", "d7") is False
    assert await store.overrides() == [ban]
    redis_client.delete(ROUTING_OVERRIDES_KEY)
