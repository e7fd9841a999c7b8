"""The producer's operations against the session's real Redis."""

import uuid

import pytest
import redis

from dispatcher.errors import ResendRefused, UnknownOtp
from dispatcher.schemas import OtpStatus
from dispatcher.store import FIRST_JOB, LimitReached, OtpStore, SendLimits
from tests.dispatcher.store.otps import NOW, new, new_otp


async def test_a_new_otp_is_open_with_no_attempts(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    report = await store.report(otp_id, NOW)

    assert (report.status, report.resend_count, report.attempts, report.expiry) == (OtpStatus.OPEN, 0, [], 600)


async def test_an_otp_is_found_by_its_blinded_number_and_range(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    assert await store.recipient_of(otp_id) == ("blinded-number", "+336123")


async def test_a_discarded_otp_is_unknown(store: OtpStore) -> None:
    otp_id = await new_otp(store)

    await store.discard(otp_id)

    with pytest.raises(UnknownOtp):
        await store.report(otp_id, NOW)


async def test_a_resend_counts_and_starts_a_new_send(store: OtpStore) -> None:
    otp_id = await new_otp(store, resend_delay=0)

    resent = await store.resend(otp_id, NOW)
    state = await store.delivery_state(otp_id)

    assert (resent.resend_count, resent.job_seq) == (1, FIRST_JOB + 1)
    assert state is not None
    assert (state.send_seq, state.spec.recipient, state.spec.content) == (2, "+33612345678", "Your code is {}")


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


async def test_a_new_otp_its_limits_refuse_is_not_recorded_and_counts_nothing(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given limits of two counters, the first already at its limit of one
    first, second, block = (f"test:limit:{uuid.uuid4()}" for _ in range(3))
    limits = SendLimits((first, second, block), (2, 1, 60, "FIRST_FULL", 5, 60, "SECOND", 900, 0.9))
    redis_client.set(first, 1, ex=60)

    # When an OTP is created under them
    otp = new()
    with pytest.raises(LimitReached) as refused:
        await store.create(otp, limits)

    # Then the first counter refuses it, saying when it lifts, nothing is recorded and the second is not counted
    assert refused.value.code == "FIRST_FULL"
    assert 0 < refused.value.retry_after <= 60
    with pytest.raises(UnknownOtp):
        await store.report(otp.otp_id, NOW)
    assert redis_client.get(second) is None


async def test_a_new_otp_its_limits_allow_is_recorded_and_counted_on_each(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    first, second, block = (f"test:limit:{uuid.uuid4()}" for _ in range(3))
    limits = SendLimits((first, second, block), (2, 1, 60, "FIRST_FULL", 5, 60, "SECOND", 900, 0.9))

    otp = new()
    await store.create(otp, limits)

    assert (await store.report(otp.otp_id, NOW)).status == OtpStatus.OPEN
    assert [redis_client.get(key) for key in (first, second)] == ["1", "1"]
