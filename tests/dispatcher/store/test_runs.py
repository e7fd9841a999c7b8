"""Delivery runs against the session's real Redis: claims, leases, crashes, progress and outcomes."""

import redis

from dispatcher.constants import lease_key, record_key
from dispatcher.schemas import OtpStatus
from dispatcher.store import FIRST_JOB, MAX_CRASHES, ClaimKind, OtpStore
from dispatcher.store.record import Field
from tests.dispatcher.store.otps import NOW, SPEC, attempt, new_otp


async def test_a_send_is_delivered_once_only(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    assert (await store.mark_delivered(otp_id, 1, "ref-1", attempt("d7"))).delivered
    assert not (await store.mark_delivered(otp_id, 1, "", attempt("console"))).delivered
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.vendor, state.reference, state.delivered_seq) == ("d7", "ref-1", 1)
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.SKIP


async def test_a_delivery_is_logged_with_its_attempt(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.mark_delivered(otp_id, 1, "ref-1", attempt("d7"))

    report = await store.report(otp_id, NOW)
    assert (report.delivered_by, [logged.vendor for logged in report.attempts]) == ("d7", ["d7"])


async def test_a_failed_first_send_fails_the_otp(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.mark_failed(otp_id, 1, "every provider of the chain failed")

    report = await store.report(otp_id, NOW)
    assert (report.status, report.failure_reason) == (OtpStatus.FAILED, "every provider of the chain failed")


async def test_a_claim_runs_with_the_unsealed_spec(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    claim = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    assert claim.kind is ClaimKind.RUN
    assert claim.state is not None
    assert (claim.state.spec, claim.state.send_seq) == (SPEC, 1)


async def test_a_gone_otp_has_no_delivery_state(store: OtpStore) -> None:
    assert await store.delivery_state("no-such-id") is None


async def test_only_one_run_holds_the_lease(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    first = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.BUSY
    await store.release(otp_id, first.lease)
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.RUN


async def test_a_job_older_than_the_queued_retry_does_nothing(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    retry_job = await store.save_progress(otp_id, 1, 0, 1, retry_at=NOW + 1)
    await store.release(otp_id, run.lease)

    assert retry_job == FIRST_JOB + 1
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.SKIP
    assert (await store.claim(otp_id, retry_job, 5, NOW)).kind is ClaimKind.RUN


async def test_progress_is_where_the_next_run_resumes(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.save_progress(otp_id, 1, 2, 1)

    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.chain_pos, state.vendor_tries) == (2, 1)


async def test_progress_of_a_send_a_resend_replaced_queues_nothing(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)
    await store.resend(otp_id, NOW)

    assert await store.save_progress(otp_id, 1, 0, 1, retry_at=NOW + 1) == 0


async def test_nothing_runs_for_an_expired_otp(store: OtpStore) -> None:
    otp_id = await new_otp(store, expiry=600)

    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW + 600)).kind is ClaimKind.SKIP


async def test_a_run_after_one_that_died_holding_the_lease_is_told_so(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await new_otp(store)
    await store.claim(otp_id, FIRST_JOB, 5, NOW)  # dies: never released
    redis_client.delete(lease_key(otp_id))  # its lease runs out

    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.CRASHED


async def test_a_run_that_ends_after_its_lease_ran_out_is_not_taken_for_dead(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await new_otp(store)
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    redis_client.delete(lease_key(otp_id))  # its lease runs out while Redis is out of its reach

    await store.release(otp_id, run.lease)

    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.RUN


async def test_a_late_end_leaves_the_lease_of_the_run_that_took_over(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await new_otp(store)
    late = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    redis_client.delete(lease_key(otp_id))
    current = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    await store.release(otp_id, late.lease)

    assert redis_client.get(lease_key(otp_id)) == current.lease
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.BUSY


async def test_a_claim_whose_answer_was_lost_is_given_back_by_its_token(store: OtpStore) -> None:
    # Given a claim made with a token the caller picked (its answer lost on the way back)
    otp_id = await new_otp(store)
    await store.claim(otp_id, FIRST_JOB, 5, NOW, "picked-token")

    # When the caller gives back what that token may hold
    await store.release(otp_id, "picked-token", only_if_held=True)

    # Then the run is over, not dead: the next claim runs
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.RUN


async def test_the_same_claim_sent_again_answers_as_the_first_did_and_counts_nothing_twice(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given an OTP whose last run died, claimed by a run (CRASHED, one crash counted)
    otp_id = await new_otp(store)
    await store.claim(otp_id, FIRST_JOB, 5, NOW)
    redis_client.delete(lease_key(otp_id))
    first = await store.claim(otp_id, FIRST_JOB, 5, NOW, "resent-token")

    # When the client sends the same claim again (its first answer lost)
    again = await store.claim(otp_id, FIRST_JOB, 5, NOW, "resent-token")

    # Then it answers what the first did, holding the same lease, and the crash is counted once
    assert (first.kind, again.kind, again.lease) == (ClaimKind.CRASHED, ClaimKind.CRASHED, "resent-token")
    assert redis_client.hget(record_key(otp_id), Field.CRASHES) == "1"


async def test_giving_back_a_claim_that_never_ran_leaves_a_dead_runs_mark_and_another_runs_lease(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given an OTP whose last run died (its lease ran out), and one whose lease another run holds
    dead = await new_otp(store)
    await store.claim(dead, FIRST_JOB, 5, NOW)
    redis_client.delete(lease_key(dead))
    held = await new_otp(store)
    holder = await store.claim(held, FIRST_JOB, 5, NOW)

    # When a caller whose claims never ran gives back what its token may hold
    await store.release(dead, "never-claimed", only_if_held=True)
    await store.release(held, "never-claimed", only_if_held=True)

    # Then the next run is still told of the dead one, and the other run keeps its lease
    assert (await store.claim(dead, FIRST_JOB, 5, NOW)).kind is ClaimKind.CRASHED
    assert redis_client.get(lease_key(held)) == holder.lease


async def test_an_otp_whose_runs_keep_dying_fails_for_good(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store)
    kinds = []
    for _ in range(MAX_CRASHES + 1):
        kinds.append((await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind)
        redis_client.delete(lease_key(otp_id))  # each run dies holding its lease, which runs out

    report = await store.report(otp_id, NOW)
    assert kinds == [ClaimKind.RUN] + [ClaimKind.CRASHED] * (MAX_CRASHES - 1) + [ClaimKind.POISON]
    assert report.status is OtpStatus.FAILED
    assert "died" in str(report.failure_reason)
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.SKIP
