"""The store against the session's real Redis; time is passed in, so expiry needs no waiting."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis

from dispatcher import codes
from dispatcher.constants import lease_key
from dispatcher.errors import ResendRefused, ServiceUnavailable, UnknownOtp
from dispatcher.schemas import Attempt, AttemptOutcome, OtpStatus, VerifyStatus
from dispatcher.sealing import Sealer
from dispatcher.store import FIRST_JOB, MAX_CRASHES, ClaimKind, NewOtp, OtpStore, connect

KEY = codes.code_key("secret")
NOW = time.time()
OTP = NewOtp(
    otp_id="",
    recipient="+33612345678",
    recipient_index="blinded-number",
    prefix="+336123",
    originator="Verify",
    content="Your code is {}",
    template_id=None,
    channel="SMS",
    data_coding="text",
    otp_type="numeric",
    code_length=6,
    expiry=600,
    resend_delay=60,
    resend_limit=2,
    max_wrong_attempts=3,
    success_url=None,
    failure_url=None,
    created_at=NOW,
)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[OtpStore]:
    store = OtpStore(connect(redis_url, 1.0), Sealer("secret"), grace=60)
    yield store
    await store.close()


def attempt(vendor: str, send_number: int = 1) -> Attempt:
    return Attempt(
        send_number=send_number,
        vendor=vendor,
        started_at=datetime.now(tz=UTC),
        latency_ms=1.0,
        outcome=AttemptOutcome.DELIVERED,
    )


async def new_otp(store: OtpStore, **changes: object) -> str:
    otp = replace(OTP, otp_id=str(uuid.uuid4()), **changes)  # type: ignore[arg-type]
    await store.create(otp)
    return otp.otp_id


async def delivered_with_code(store: OtpStore, code: str = "123456", **changes: object) -> str:
    otp_id = await new_otp(store, **changes)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, code))
    await store.mark_delivered(otp_id, 1, "", attempt("console"))
    return otp_id


async def delivered_by_vendor(store: OtpStore, **changes: object) -> str:
    otp_id = await new_otp(store, **changes)
    await store.mark_delivered(otp_id, 1, "d7-ref", attempt("d7"))
    return otp_id


async def verify(store: OtpStore, otp_id: str, code: str, now: float = NOW) -> VerifyStatus:
    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, code), now)
    assert ticket.decided is not None
    return ticket.decided


async def test_a_new_otp_is_open_with_no_attempts(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    report = await store.report(otp_id, NOW)

    assert (report.status, report.resend_count, report.attempts, report.expiry) == (OtpStatus.OPEN, 0, [], 600)


async def test_the_record_keeps_neither_the_number_nor_the_message_in_clear(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await delivered_with_code(store, code="987654")

    stored = str(redis_client.hgetall(f"otp:{otp_id}"))

    assert "33612345678" not in stored
    assert "Your code" not in stored
    assert "987654" not in stored


async def test_the_record_expires_a_grace_period_after_the_code(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store, expiry=100)

    assert 100 < redis_client.ttl(f"otp:{otp_id}") <= 160


async def test_the_right_code_is_approved_once_then_already_verified(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store)

    assert await verify(store, otp_id, "123456") == VerifyStatus.APPROVED
    assert await verify(store, otp_id, "123456") == VerifyStatus.ALREADY_VERIFIED


async def test_a_wrong_code_fails(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store)

    assert await verify(store, otp_id, "000000") == VerifyStatus.FAILED


async def test_after_max_wrong_attempts_even_the_right_code_fails(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store)
    for _ in range(3):
        assert await verify(store, otp_id, "000000") == VerifyStatus.FAILED

    assert await verify(store, otp_id, "123456") == VerifyStatus.FAILED


async def test_a_code_verified_after_expiry_is_expired(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store)

    assert await verify(store, otp_id, "123456", now=NOW + 600) == VerifyStatus.EXPIRED
    assert (await store.report(otp_id, NOW + 600)).status == OtpStatus.EXPIRED


async def test_an_unknown_id_fails_like_a_wrong_code(store: OtpStore) -> None:
    assert await verify(store, "no-such-id", "123456") == VerifyStatus.FAILED


async def test_of_many_concurrent_correct_verifies_exactly_one_is_approved(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store)

    results = await asyncio.gather(*(verify(store, otp_id, "123456") for _ in range(50)))

    assert results.count(VerifyStatus.APPROVED) == 1
    assert results.count(VerifyStatus.ALREADY_VERIFIED) == 49


async def test_concurrent_wrong_guesses_evaluate_exactly_max_attempts(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await delivered_with_code(store)

    results = await asyncio.gather(*(verify(store, otp_id, "000000") for _ in range(100)))

    assert set(results) == {VerifyStatus.FAILED}
    assert redis_client.hget(f"otp:{otp_id}", "verify_attempts") == "3"


async def test_a_vendor_code_reserves_an_attempt_and_returns_the_vendor_reference(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)

    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, "123456"), NOW)

    assert (ticket.decided, ticket.vendor, ticket.reference) == (None, "d7", "d7-ref")


async def test_concurrent_vendor_checks_reserve_at_most_max_attempts(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)

    tickets = await asyncio.gather(*(store.verify(otp_id, "digest", NOW) for _ in range(100)))

    assert sum(ticket.decided is None for ticket in tickets) == 3


async def test_of_two_vendor_approvals_one_is_approved_and_one_already_verified(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    await store.verify(otp_id, "digest", NOW)
    await store.verify(otp_id, "digest", NOW)

    first = await store.settle_vendor_verify(otp_id, True, NOW)
    second = await store.settle_vendor_verify(otp_id, True, NOW)

    assert (first, second) == (VerifyStatus.APPROVED, VerifyStatus.ALREADY_VERIFIED)


async def test_a_vendor_refusal_counts_as_a_wrong_code(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, max_wrong_attempts=1)
    await store.verify(otp_id, "digest", NOW)

    assert await store.settle_vendor_verify(otp_id, False, NOW) == VerifyStatus.FAILED
    assert (await store.verify(otp_id, "digest", NOW)).decided == VerifyStatus.FAILED


async def test_a_refunded_attempt_can_be_used_again(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, max_wrong_attempts=1)
    await store.verify(otp_id, "digest", NOW)

    await store.refund_verify(otp_id)

    assert (await store.verify(otp_id, "digest", NOW)).decided is None


async def test_a_code_checked_before_any_delivery_fails_and_counts(store: OtpStore) -> None:
    otp_id = await new_otp(store, max_wrong_attempts=1)

    assert await verify(store, otp_id, "123456") == VerifyStatus.FAILED
    assert (await store.verify(otp_id, "digest", NOW)).decided == VerifyStatus.FAILED


async def test_a_resend_counts_and_starts_a_new_send(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)

    resent = await store.resend(otp_id, NOW)
    state = await store.delivery_state(otp_id)

    assert (resent.resend_count, resent.job_seq) == (1, FIRST_JOB + 1)
    assert state is not None
    assert (state.send_seq, state.recipient, state.content) == (2, "+33612345678", "Your code is {}")


async def test_a_resend_sooner_than_the_delay_is_refused(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=60)

    with pytest.raises(ResendRefused) as refused:
        await store.resend(otp_id, NOW + 59)

    assert refused.value.code == "RESEND_TOO_SOON"
    assert (await store.resend(otp_id, NOW + 60)).resend_count == 1


async def test_resends_beyond_the_limit_are_refused(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)
    await store.resend(otp_id, NOW)
    await store.resend(otp_id, NOW)

    with pytest.raises(ResendRefused) as refused:
        await store.resend(otp_id, NOW)

    assert refused.value.code == "RESEND_LIMIT_REACHED"


async def test_a_resend_after_expiry_is_refused(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)

    with pytest.raises(ResendRefused) as refused:
        await store.resend(otp_id, NOW + 600)

    assert refused.value.code == "OTP_EXPIRED"


async def test_resending_an_unknown_otp_is_unknown(store: OtpStore) -> None:
    with pytest.raises(UnknownOtp):
        await store.resend("no-such-id", NOW)


async def test_a_send_is_delivered_once_only(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    assert await store.mark_delivered(otp_id, 1, "ref-1", attempt("d7"))
    assert not await store.mark_delivered(otp_id, 1, "", attempt("console"))
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.vendor, state.reference, state.delivered_seq) == ("d7", "ref-1", 1)
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.SKIP


async def test_a_failed_first_send_fails_the_otp(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.mark_failed(otp_id, 1, "every provider of the chain failed")

    report = await store.report(otp_id, NOW)
    assert (report.status, report.failure_reason) == (OtpStatus.FAILED, "every provider of the chain failed")


async def test_a_failed_resend_keeps_an_earlier_delivered_code_valid(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store, resend_delay=0)
    await store.resend(otp_id, NOW)

    await store.mark_failed(otp_id, 2, "every provider of the chain failed")

    assert await verify(store, otp_id, "123456") == VerifyStatus.APPROVED


async def test_a_claim_runs_with_the_unsealed_state(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    claim = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    assert claim.kind is ClaimKind.RUN
    assert claim.state is not None
    assert (claim.state.recipient, claim.state.send_seq) == ("+33612345678", 1)


async def test_only_one_run_holds_the_lease(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    first = await store.claim(otp_id, FIRST_JOB, 5, NOW)

    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.BUSY
    await store.release(otp_id, first.lease)
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.RUN


async def test_a_job_older_than_the_queued_retry_does_nothing(store: OtpStore) -> None:
    otp_id = await new_otp(store)
    run = await store.claim(otp_id, FIRST_JOB, 5, NOW)
    retry_job = await store.save_progress(otp_id, 1, 0, 1, next_job=True)
    await store.release(otp_id, run.lease)

    assert retry_job == FIRST_JOB + 1
    assert (await store.claim(otp_id, FIRST_JOB, 5, NOW)).kind is ClaimKind.SKIP
    assert (await store.claim(otp_id, retry_job, 5, NOW)).kind is ClaimKind.RUN


async def test_progress_of_a_send_a_resend_replaced_queues_nothing(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)
    await store.resend(otp_id, NOW)

    assert await store.save_progress(otp_id, 1, 0, 1, next_job=True) == 0


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


async def test_redis_down_is_service_unavailable_within_the_timeout() -> None:
    dead = OtpStore(connect("redis://127.0.0.1:1/0", 0.5), Sealer("secret"), grace=60)
    started = time.monotonic()

    with pytest.raises(ServiceUnavailable):
        await dead.report("any", NOW)

    assert time.monotonic() - started < 2
    await dead.close()


async def test_every_code_generated_for_an_otp_verifies(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store, code="111111")
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "222222"))

    assert await verify(store, otp_id, "111111") == VerifyStatus.APPROVED


async def test_only_the_most_recent_codes_stay_valid(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store, code="100000", max_wrong_attempts=10)
    for code in ("100001", "100002", "100003", "100004", "100005"):
        await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, code))

    assert await verify(store, otp_id, "100000") == VerifyStatus.FAILED
    assert await verify(store, otp_id, "100001") == VerifyStatus.APPROVED


async def test_a_vendor_code_still_goes_to_its_vendor_after_a_transport_delivers_a_resend(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, resend_delay=0)
    await store.resend(otp_id, NOW)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "333333"))
    await store.mark_delivered(otp_id, 2, "", attempt("console", send_number=2))

    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, "999999"), NOW)

    assert (ticket.vendor, ticket.reference) == ("d7", "d7-ref")
    assert (await store.report(otp_id, NOW)).delivered_by == "console"
