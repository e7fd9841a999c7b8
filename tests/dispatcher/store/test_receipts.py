"""Receipts in the store: one receipt for one attempt is one step, whose answer says whether it is the first for
that attempt and whether the OTP's current send is still open."""

import time
import uuid

import redis

from dispatcher.constants import receipt_ref_key, receipts_key
from dispatcher.store import OtpStore, ReceiptKind
from tests.dispatcher.store.otps import NOW, attempt, new_otp
from vendors.receipts import Receipt, ReceiptOutcome


def ref() -> str:
    return f"ref-{uuid.uuid4().hex}"


def delivered(reference: str) -> Receipt:
    return Receipt(reference, ReceiptOutcome.DELIVERED, "DELIVERED")


def undelivered(reference: str) -> Receipt:
    return Receipt(reference, ReceiptOutcome.UNDELIVERED, "NOT_DELIVERED", "NOT_DELIVERED")


async def accepted(store: OtpStore, vendor: str = "octopush") -> tuple[str, str]:
    """An OTP whose first send the vendor accepted (its attempt 0), and the vendor's reference for it."""
    otp_id, reference = await new_otp(store), ref()
    await store.mark_delivered(otp_id, 1, "token", attempt(vendor), receipt_reference=reference)
    return otp_id, reference


async def test_the_first_receipt_for_an_accepted_attempt_is_recorded_and_says_the_send_is_open(
    store: OtpStore,
) -> None:
    otp_id, reference = await accepted(store)

    answer = await store.record_receipt("octopush", delivered(reference), time.time() + 3)

    assert (answer.kind, answer.first, answer.otp_id, answer.attempt, answer.send_open) == (
        ReceiptKind.RECORDED,
        True,
        otp_id,
        0,
        True,
    )
    assert answer.latency_ms is not None
    assert 2000 < answer.latency_ms < 4000


async def test_the_report_shows_the_receipt_its_time_and_latency_on_its_attempt(store: OtpStore) -> None:
    otp_id, reference = await accepted(store)
    received_at = time.time() + 3

    await store.record_receipt("octopush", undelivered(reference), received_at)

    logged = (await store.report(otp_id, NOW + 4)).attempts[0]
    assert (logged.receipt, logged.receipt_status, logged.receipt_reason) == (
        "UNDELIVERED",
        "NOT_DELIVERED",
        "NOT_DELIVERED",
    )
    assert logged.receipt_at is not None
    assert abs(logged.receipt_at.timestamp() - received_at) < 0.01
    assert logged.receipt_latency_ms is not None
    assert logged.receipt_latency_ms > 0


async def test_a_second_receipt_for_the_same_attempt_changes_nothing(store: OtpStore) -> None:
    otp_id, reference = await accepted(store)
    await store.record_receipt("octopush", delivered(reference), NOW + 3)

    again = await store.record_receipt("octopush", undelivered(reference), NOW + 5)

    assert (again.kind, again.first) == (ReceiptKind.DUPLICATE, False)
    assert (await store.report(otp_id, NOW + 6)).attempts[0].receipt == "DELIVERED"


async def test_a_receipt_without_evidence_is_kept_until_one_with_evidence_comes(store: OtpStore) -> None:
    otp_id, reference = await accepted(store)
    await store.record_receipt("octopush", Receipt(reference, ReceiptOutcome.NONE, "UNKNOWN_DELIVERY"), NOW + 2)

    later = await store.record_receipt("octopush", delivered(reference), NOW + 4)

    assert later.kind is ReceiptKind.RECORDED
    assert (await store.report(otp_id, NOW + 5)).attempts[0].receipt_status == "DELIVERED"


async def test_a_receipt_for_an_unknown_reference_changes_no_attempt(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id, _ = await accepted(store)

    answer = await store.record_receipt("octopush", delivered(ref()), NOW)

    assert answer.kind is ReceiptKind.EARLY
    assert not redis_client.exists(receipts_key(otp_id))


async def test_a_receipt_that_came_before_its_attempt_was_logged_is_taken_by_the_attempt(store: OtpStore) -> None:
    otp_id, reference = await new_otp(store), ref()
    await store.record_receipt("octopush", delivered(reference), NOW)

    await store.mark_delivered(otp_id, 1, "token", attempt("octopush"), receipt_reference=reference)

    assert (await store.report(otp_id, NOW + 1)).attempts[0].receipt == "DELIVERED"


async def test_the_same_reference_at_another_vendor_is_another_message(store: OtpStore) -> None:
    _, reference = await accepted(store, vendor="octopush")

    answer = await store.record_receipt("d7", delivered(reference), NOW)

    assert answer.kind is ReceiptKind.EARLY


async def test_a_receipt_after_the_otp_expired_is_recorded_and_says_the_send_is_closed(store: OtpStore) -> None:
    _, reference = await accepted(store)

    answer = await store.record_receipt("octopush", delivered(reference), NOW + 601)

    assert (answer.kind, answer.send_open) == (ReceiptKind.RECORDED, False)


async def test_a_receipt_for_an_attempt_of_an_earlier_send_says_the_current_send_is_not_its_own(
    store: OtpStore,
) -> None:
    otp_id, reference = await accepted(store)
    await store.resend(otp_id, NOW + 61)

    answer = await store.record_receipt("octopush", delivered(reference), NOW + 62)

    assert (answer.kind, answer.send_open) == (ReceiptKind.RECORDED, False)


async def test_a_receipt_for_an_otp_gone_changes_nothing(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id, reference = await accepted(store)
    redis_client.delete(f"otp:{otp_id}", f"otp:{otp_id}:attempts")

    answer = await store.record_receipt("octopush", delivered(reference), NOW)

    assert answer.kind is ReceiptKind.GONE
    assert not redis_client.exists(receipts_key(otp_id))


async def test_the_reference_map_holds_no_number_and_expires_with_the_otp(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id, reference = await accepted(store)

    mapped = redis_client.get(receipt_ref_key("octopush", reference))

    assert mapped is not None
    assert mapped.startswith(f"{otp_id} 0 1 ")
    assert "612345678" not in mapped
    assert 0 < redis_client.ttl(receipt_ref_key("octopush", reference)) <= redis_client.ttl(f"otp:{otp_id}")
