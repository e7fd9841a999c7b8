"""The producer's operations against the session's real Redis."""

import pytest

from dispatcher.errors import ResendRefused, UnknownOtp
from dispatcher.schemas import OtpStatus
from dispatcher.store import FIRST_JOB, OtpStore
from tests.dispatcher.store.otps import NOW, new_otp


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
