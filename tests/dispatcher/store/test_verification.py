"""Verification against the session's real Redis: the attempt budget and exactly one approval, under concurrency."""

import asyncio

import redis

from dispatcher import codes
from dispatcher.schemas import OtpStatus, VerifyStatus
from dispatcher.store import OtpStore, VendorCheck, VerifyTicket
from tests.dispatcher.store.otps import (
    KEY,
    NOW,
    attempt,
    delivered_by_vendor,
    delivered_with_code,
    new_otp,
    verify,
)
from tests.support import wait_for


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

    assert (ticket.decided, ticket.checks) == (None, (VendorCheck("d7", "d7-ref"),))


async def test_concurrent_vendor_checks_of_distinct_codes_reserve_at_most_max_attempts(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)

    tickets = await asyncio.gather(*(store.verify(otp_id, f"digest-{i}", NOW) for i in range(100)))

    assert sum(bool(ticket.checks) for ticket in tickets) == 3
    assert sum(ticket.decided == VerifyStatus.FAILED for ticket in tickets) == 97


async def test_of_two_vendor_approvals_one_is_approved_and_one_already_verified(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    first_ticket = await store.verify(otp_id, "digest-a", NOW)
    second_ticket = await store.verify(otp_id, "digest-b", NOW)

    first = await store.settle_vendor_verify(otp_id, "digest-a", first_ticket, first_ticket.checks[0], NOW)
    second = await store.settle_vendor_verify(otp_id, "digest-b", second_ticket, second_ticket.checks[0], NOW)

    assert (first.status, second.status) == (VerifyStatus.APPROVED, VerifyStatus.ALREADY_VERIFIED)


async def test_a_vendor_refusal_counts_as_a_wrong_code(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, max_wrong_attempts=1)
    ticket = await store.verify(otp_id, "digest", NOW)

    assert (await store.settle_vendor_verify(otp_id, "digest", ticket, None, NOW)).status == VerifyStatus.FAILED
    assert (await store.verify(otp_id, "other-digest", NOW)).decided == VerifyStatus.FAILED


async def test_a_refunded_attempt_can_be_used_again(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, max_wrong_attempts=1)
    ticket = await store.verify(otp_id, "digest", NOW)

    await store.refund_verify(otp_id, "digest", ticket)

    assert (await store.verify(otp_id, "other-digest", NOW)).checks == (VendorCheck("d7", "d7-ref"),)


async def test_a_code_being_checked_makes_the_same_code_wait_without_reserving_an_attempt(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await delivered_by_vendor(store)
    await store.verify(otp_id, "digest", NOW)

    ticket = await store.verify(otp_id, "digest", NOW)

    assert ticket.waiting
    assert redis_client.hget(f"otp:{otp_id}", "verify_attempts") == "1"


async def test_a_code_being_checked_with_the_last_attempt_makes_the_same_code_wait_not_fail(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, max_wrong_attempts=1)
    await store.verify(otp_id, "digest", NOW)

    assert (await store.verify(otp_id, "digest", NOW)).waiting


async def test_while_a_code_is_checked_a_distinct_code_reserves_its_own_attempt(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    await store.verify(otp_id, "digest", NOW)

    assert (await store.verify(otp_id, "other-digest", NOW)).checks == (VendorCheck("d7", "d7-ref"),)


async def test_a_code_the_vendor_judged_wrong_fails_again_without_an_attempt_or_a_vendor_check(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await delivered_by_vendor(store)
    ticket = await store.verify(otp_id, "digest", NOW)
    await store.settle_vendor_verify(otp_id, "digest", ticket, None, NOW)

    again = [await store.verify(otp_id, "digest", NOW) for _ in range(5)]

    assert [ticket.decided for ticket in again] == [VerifyStatus.FAILED] * 5
    assert redis_client.hget(f"otp:{otp_id}", "verify_attempts") == "1"


async def test_after_the_vendor_approves_a_code_the_same_code_is_already_verified(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    ticket = await store.verify(otp_id, "digest", NOW)
    await store.settle_vendor_verify(otp_id, "digest", ticket, ticket.checks[0], NOW)

    assert (await store.verify(otp_id, "digest", NOW)).decided == VerifyStatus.ALREADY_VERIFIED


async def test_after_a_refund_the_next_verify_of_the_code_leads_a_new_check(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    ticket = await store.verify(otp_id, "digest", NOW)

    await store.refund_verify(otp_id, "digest", ticket)

    assert (await store.verify(otp_id, "digest", NOW)).checks == (VendorCheck("d7", "d7-ref"),)


async def test_a_check_whose_leader_vanished_is_led_again_once_it_expires(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    await store.verify(otp_id, "digest", NOW, check_ttl=0.05)

    async def led() -> VerifyTicket | None:
        ticket = await store.verify(otp_id, "digest", NOW)
        return ticket if not ticket.waiting else None

    assert (await wait_for(led, within=2.0)).checks == (VendorCheck("d7", "d7-ref"),)


async def test_a_late_refund_leaves_the_newer_check_of_the_code_in_flight(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store)
    stale = await store.verify(otp_id, "digest", NOW, check_ttl=0.05)

    async def led() -> VerifyTicket | None:
        ticket = await store.verify(otp_id, "digest", NOW)
        return ticket if not ticket.waiting else None

    await wait_for(led, within=2.0)
    await store.refund_verify(otp_id, "digest", stale)

    assert (await store.verify(otp_id, "digest", NOW)).waiting


async def test_a_code_judged_wrong_goes_to_the_vendor_again_after_a_new_vendor_delivery(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, resend_delay=0)
    ticket = await store.verify(otp_id, "digest", NOW)
    await store.settle_vendor_verify(otp_id, "digest", ticket, None, NOW)
    await store.resend(otp_id, NOW)
    await store.mark_delivered(otp_id, 2, "d7-ref-2", attempt("d7", send_number=2))

    again = await store.verify(otp_id, "digest", NOW)

    assert again.checks == (VendorCheck("d7", "d7-ref-2"),)


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
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "222222"), 1, "console")

    assert await verify(store, otp_id, "111111") == VerifyStatus.APPROVED


async def test_only_the_most_recent_codes_stay_valid(store: OtpStore) -> None:
    otp_id = await delivered_with_code(store, code="100000", max_wrong_attempts=10)
    for code in ("100001", "100002", "100003", "100004", "100005"):
        await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, code), 1, "console")

    assert await verify(store, otp_id, "100000") == VerifyStatus.FAILED
    assert await verify(store, otp_id, "100001") == VerifyStatus.APPROVED


async def test_a_vendor_code_still_goes_to_its_vendor_after_a_transport_delivers_a_resend(store: OtpStore) -> None:
    otp_id = await delivered_by_vendor(store, resend_delay=0)
    await store.resend(otp_id, NOW)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "333333"), 2, "console")
    await store.mark_delivered(otp_id, 2, "", attempt("console", send_number=2))

    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, "999999"), NOW)

    assert ticket.checks == (VendorCheck("d7", "d7-ref"),)
    assert (await store.report(otp_id, NOW)).delivered_by == "console"


async def vendor_codes_from_two_vendors(store: OtpStore, **changes: object) -> str:
    """An OTP whose first send D7 delivered with its own code, then (a later send) Octopush with its own."""
    otp_id = await delivered_by_vendor(store, resend_delay=0, **changes)
    await store.resend(otp_id, NOW)
    await store.mark_delivered(otp_id, 2, "sms_octo", attempt("octopush", send_number=2))
    return otp_id


async def test_a_vendor_code_goes_to_every_vendor_that_sent_one_newest_first(store: OtpStore) -> None:
    otp_id = await vendor_codes_from_two_vendors(store)

    ticket = await store.verify(otp_id, "digest", NOW)

    assert ticket.checks == (VendorCheck("octopush", "sms_octo"), VendorCheck("d7", "d7-ref"))


async def test_a_code_every_vendor_refused_costs_one_attempt_and_fails_again_for_free(store: OtpStore) -> None:
    otp_id = await vendor_codes_from_two_vendors(store, max_wrong_attempts=2)
    ticket = await store.verify(otp_id, "digest", NOW)

    assert (await store.settle_vendor_verify(otp_id, "digest", ticket, None, NOW)).status == VerifyStatus.FAILED
    again = [await store.verify(otp_id, "digest", NOW) for _ in range(3)]

    assert [ticket.decided for ticket in again] == [VerifyStatus.FAILED] * 3
    other = await store.verify(otp_id, "other-digest", NOW)
    assert len(other.checks) == 2  # one attempt of two spent: a distinct code is still checked


async def test_a_code_an_earlier_vendor_approves_credits_that_vendors_attempt(store: OtpStore) -> None:
    otp_id = await vendor_codes_from_two_vendors(store)
    ticket = await store.verify(otp_id, "digest", NOW)

    verdict = await store.settle_vendor_verify(otp_id, "digest", ticket, ticket.checks[1], NOW)

    assert verdict.status == VerifyStatus.APPROVED
    assert verdict.conversion is not None
    assert verdict.conversion.attempt is not None
    assert (verdict.conversion.attempt.vendor, verdict.conversion.attempt.send_number) == ("d7", 1)
