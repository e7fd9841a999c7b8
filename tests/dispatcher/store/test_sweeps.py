"""The due indexes and the sweeper's operations, on real Redis; time is passed in, so nothing waits."""

import redis

from dispatcher.constants import DUE_KEY, POSTBACKS_DUE_KEY
from dispatcher.schemas import PostbackEvent
from dispatcher.store import FIRST_JOB, OtpStore
from dispatcher.store.connection import DUE_GRACE
from tests.dispatcher.store.otps import NOW, attempt, new_otp

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
