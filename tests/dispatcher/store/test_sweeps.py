"""The due indexes and the sweeper's operations, on real Redis; time is passed in, so nothing waits."""

import asyncio
import time
import uuid
from dataclasses import replace

import redis

from dispatcher import codes
from dispatcher.constants import DUE_KEY, EXPIRING_KEY, POSTBACKS_DUE_KEY
from dispatcher.schemas import AttemptOutcome, PostbackEvent, VerifyStatus
from dispatcher.sealing import Sealer
from dispatcher.store import FIRST_JOB, OtpStore, Route, connect
from dispatcher.store.connection import DUE_GRACE
from tests.dispatcher.store.otps import KEY, NOW, attempt, new, new_otp, verify
from tests.support import own_database

HORIZON = 120.0
LATER = NOW + DUE_GRACE + 0.1
"""Just past a new OTP's due time."""


async def lost_ids(store: OtpStore, now: float, backlog: bool = False) -> dict[str, int]:
    return {lost.job.otp_id: lost.job.job_seq for lost in await store.sweep(now, HORIZON, backlog)}


async def test_an_otp_no_worker_took_is_queued_again_with_a_new_job_number_once_due(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    before = await lost_ids(store, NOW + DUE_GRACE / 2)
    after = await lost_ids(store, LATER)

    assert otp_id not in before
    assert after[otp_id] == FIRST_JOB + 1


async def test_an_otp_queued_again_is_due_again_one_grace_later(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    await lost_ids(store, LATER)

    assert otp_id not in await lost_ids(store, LATER + DUE_GRACE / 2)
    assert otp_id in await lost_ids(store, LATER + DUE_GRACE + 0.1)


async def test_an_otp_a_run_holds_is_not_queued_again_until_its_lease_runs_out(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    await store.claim(otp_id, FIRST_JOB, lease_seconds=30, now=NOW)

    assert otp_id not in await lost_ids(store, LATER)


async def test_a_delivered_otp_leaves_the_due_index(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store)
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    await store.mark_delivered(otp_id, 1, "", attempt("console"), run.lease)

    assert redis_client.zscore(DUE_KEY, otp_id) is None


async def test_an_expired_otp_is_dropped_from_the_index_not_queued(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store, expiry=30)

    taken = await lost_ids(store, NOW + 31)

    assert otp_id not in taken
    assert redis_client.zscore(DUE_KEY, otp_id) is None


async def test_while_jobs_wait_in_the_queue_a_recent_job_is_not_taken_for_lost(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    recent = await lost_ids(store, LATER, backlog=True)
    old = await lost_ids(store, NOW + HORIZON + DUE_GRACE + 1, backlog=True)

    assert otp_id not in recent
    assert otp_id in old


async def test_a_job_a_worker_took_is_not_due_before_it_is_told(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.postpone([otp_id], NOW + HORIZON)

    assert otp_id not in await lost_ids(store, NOW + HORIZON - 1)
    assert otp_id in await lost_ids(store, NOW + HORIZON + 1)


async def test_a_failed_send_owes_its_postback_until_the_receiver_takes_it(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await new_otp(store, failure_url="https://example.com/otp")
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    await store.mark_failed(otp_id, 1, "every vendor failed", run.lease)

    due = await store.sweep_postbacks(NOW + 3600)
    await store.postback_received(otp_id, PostbackEvent.FAILED)

    assert (otp_id, PostbackEvent.FAILED) in due
    assert redis_client.zscore(POSTBACKS_DUE_KEY, f"{otp_id}:FAILED") is None


async def test_a_send_without_a_postback_url_owes_none(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    await store.mark_delivered(otp_id, 1, "", attempt("console"), run.lease)

    assert otp_id not in {owed for owed, _ in await store.sweep_postbacks(NOW + 3600)}


async def test_pending_sends_are_counted_and_those_past_due_told_apart(store: OtpStore) -> None:
    before, _ = await store.pending(NOW)
    otp_id = await new_otp(store)
    await store.postpone([otp_id], NOW + HORIZON)

    pending, overdue_now = await store.pending(NOW)
    _, overdue_later = await store.pending(NOW + HORIZON + 1)

    assert pending == before + 1
    assert overdue_later >= overdue_now + 1


async def expired_after_two_sends(store: OtpStore, vendors: tuple[str, str]) -> str:
    """An OTP to a +33 number (expiry 30 s) whose send 1 the first vendor accepted and send 2 the second; a third
    call, to the second vendor, failed."""
    otp = replace(new(expiry=30, resend_delay=0), country="+33")
    await store.create(otp)
    await store.mark_delivered(otp.otp_id, 1, "", attempt(vendors[0]))
    await store.resend(otp.otp_id, NOW)
    failed = attempt(vendors[1], send_number=2).model_copy(update={"outcome": AttemptOutcome.TEMPORARY_ERROR})
    await store.record_attempt(otp.otp_id, failed)
    await store.mark_delivered(otp.otp_id, 2, "", attempt(vendors[1], send_number=2))
    return otp.otp_id


def unique_vendors() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"a{tag}", f"b{tag}"


async def test_an_otp_expired_unverified_debits_each_attempt_its_vendors_accepted(store: OtpStore) -> None:
    # Given an OTP sent twice, by two vendors, never verified
    vendors = unique_vendors()
    await expired_after_two_sends(store, vendors)

    # When a sweep comes a due grace after its code expired
    debited = await store.sweep_expired(NOW + 30 + DUE_GRACE)

    # Then each accepted attempt's route is debited (not the failed call), and counted in the minute it expired
    mine = [route for route in debited if route.vendor in vendors]
    assert mine == [Route(vendors[0], "SMS", "+33"), Route(vendors[1], "SMS", "+33")]
    expired = {stats.route.vendor: stats.expired for stats in await store.route_stats(NOW + 31, 2)}
    assert (expired[vendors[0]], expired[vendors[1]]) == (1, 1)


async def test_an_otp_is_not_debited_before_a_due_grace_past_its_expiry(store: OtpStore) -> None:
    # Given an OTP whose code expires at NOW + 30; a verify on an API whose clock is behind may still approve it
    vendors = unique_vendors()
    await expired_after_two_sends(store, vendors)

    # When a sweep comes just after it expired
    debited = await store.sweep_expired(NOW + 30 + DUE_GRACE / 2)

    # Then it is not debited yet
    assert not [route for route in debited if route.vendor in vendors]


async def test_a_verified_otp_is_never_debited(store: OtpStore) -> None:
    # Given an OTP a vendor of this test's own delivered, verified before it expired
    name = unique_vendors()[0]
    otp_id = await new_otp(store, expiry=30)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "123456"), 1, name)
    await store.mark_delivered(otp_id, 1, "", attempt(name))
    assert await verify(store, otp_id, "123456", NOW + 5) == VerifyStatus.APPROVED

    # When its expiry is swept
    debited = await store.sweep_expired(NOW + 30 + DUE_GRACE)

    # Then it debits nothing: its route counts a send and a conversion, no expiry
    assert name not in {route.vendor for route in debited}
    [stats] = [stats for stats in await store.route_stats(time.time() + 10, 1440) if stats.route.vendor == name]
    assert (stats.sent, stats.converted, stats.expired) == (1, 1, 0)


async def test_two_sweepers_racing_debit_each_expired_otp_once(
    store: OtpStore, redis_url: str, redis_client: redis.Redis
) -> None:
    # Given five expired OTPs, and a second sweeper's store on the same Redis
    vendors = unique_vendors()
    for _ in range(5):
        await expired_after_two_sends(store, vendors)
    other = OtpStore(connect(own_database(redis_url), 1.0), Sealer("secret"), grace=60)

    # When both sweep at the same moment, several times over
    now = NOW + 30 + DUE_GRACE
    try:
        sweeps = await asyncio.gather(*(swept.sweep_expired(now) for swept in (store, other, store, other)))
    finally:
        await other.close()

    # Then each OTP's two attempts are debited once in all: ten routes, each counted once in the stats
    debited = [route for routes in sweeps for route in routes if route.vendor in vendors]
    assert sorted(route.vendor for route in debited) == [vendors[0]] * 5 + [vendors[1]] * 5
    expired = {stats.route.vendor: stats.expired for stats in await store.route_stats(NOW + 31, 2)}
    assert (expired[vendors[0]], expired[vendors[1]]) == (5, 5)
    assert redis_client.zcount(EXPIRING_KEY, "-inf", now - DUE_GRACE) == 0
