"""Verification against the session's real Redis: the attempt budget and exactly one approval, under concurrency."""

import asyncio

import redis

from dispatcher import codes
from dispatcher.schemas import OtpStatus, VerifyStatus
from dispatcher.store import OtpStore
from tests.dispatcher.store.otps import (
    KEY,
    NOW,
    attempt,
    delivered_by_vendor,
    delivered_with_code,
    new_otp,
    verify,
)


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


async def test_a_failed_resend_keeps_an_earlier_delivered_code_valid(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store, resend_delay=0)
    await store.resend(otp_id, NOW)

    await store.mark_failed(otp_id, 2, "every provider of the chain failed")

    assert await verify(store, otp_id, "123456") == VerifyStatus.APPROVED


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
