"""Conversions credited against the session's real Redis: an approved code names the attempt that carried it."""

from dataclasses import replace

from dispatcher import codes
from dispatcher.schemas import AttemptOutcome, VerifyStatus
from dispatcher.store import OtpStore
from tests.dispatcher.store.otps import KEY, NOW, attempt, delivered_by_vendor, new, new_otp, verify


async def sent_twice(store: OtpStore) -> str:
    """An OTP whose send 1 d7 took with code 111111, and whose send 2 octopush took with code 222222."""
    otp_id = await new_otp(store, resend_delay=0)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "111111"), 1, "d7")
    await store.mark_delivered(otp_id, 1, "", attempt("d7"))
    await store.resend(otp_id, NOW)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "222222"), 2, "octopush")
    await store.mark_delivered(otp_id, 2, "", attempt("octopush", send_number=2))
    return otp_id


async def test_a_code_of_send_2_approved_credits_the_attempt_that_carried_it(store: OtpStore) -> None:
    # Given an OTP sent twice, each send by another vendor with its own code
    otp_id = await sent_twice(store)

    # When send 2's code is verified
    status = await verify(store, otp_id, "222222")

    # Then send 2's attempt, by octopush, is credited
    converted = (await store.report(otp_id, NOW)).converted_by
    assert status == VerifyStatus.APPROVED
    assert converted is not None
    assert (converted.vendor, converted.send_number) == ("octopush", 2)


async def test_a_code_of_send_1_approved_after_a_resend_credits_send_1(store: OtpStore) -> None:
    # Given an OTP sent twice
    otp_id = await sent_twice(store)

    # When the first send's code is verified
    await verify(store, otp_id, "111111")

    # Then the first send's vendor is credited, not the latest
    converted = (await store.report(otp_id, NOW)).converted_by
    assert converted is not None
    assert (converted.vendor, converted.send_number) == ("d7", 1)


async def test_a_code_whose_call_ended_unknown_credits_that_attempt(store: OtpStore) -> None:
    # Given a code handed to d7 in a call whose outcome is unknown, then octopush delivering another code
    otp_id = await new_otp(store)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "111111"), 1, "d7")
    await store.record_attempt(otp_id, attempt("d7").model_copy(update={"outcome": AttemptOutcome.OUTCOME_UNKNOWN}))
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, "222222"), 1, "octopush")
    await store.mark_delivered(otp_id, 1, "", attempt("octopush"))

    # When d7's code arrived after all and is verified
    await verify(store, otp_id, "111111")

    # Then d7's attempt is credited
    converted = (await store.report(otp_id, NOW)).converted_by
    assert converted is not None
    assert (converted.vendor, converted.outcome) == ("d7", AttemptOutcome.OUTCOME_UNKNOWN)


async def test_a_vendor_code_approved_credits_the_vendor_that_checked_it(store: OtpStore) -> None:
    # Given an OTP whose code d7 generated, delivered and checks
    otp_id = await delivered_by_vendor(store)
    ticket = await store.verify(otp_id, "digest", NOW)

    # When d7 approves the code
    settled = await store.settle_vendor_verify(otp_id, "digest", ticket, ticket.checks[0], NOW)

    # Then d7's delivering attempt is credited, in the answer and in the report
    converted = (await store.report(otp_id, NOW)).converted_by
    assert settled.status == VerifyStatus.APPROVED
    assert settled.conversion is not None
    assert settled.conversion.attempt == converted
    assert converted is not None
    assert (converted.vendor, converted.outcome) == ("d7", AttemptOutcome.DELIVERED)


async def test_a_vendor_code_refused_credits_nobody(store: OtpStore) -> None:
    # Given an OTP whose code d7 checks
    otp_id = await delivered_by_vendor(store)
    ticket = await store.verify(otp_id, "digest", NOW)

    # When d7 refuses the code
    settled = await store.settle_vendor_verify(otp_id, "digest", ticket, None, NOW)

    # Then nothing is credited
    assert settled.conversion is None
    assert (await store.report(otp_id, NOW)).converted_by is None


async def test_the_report_names_no_conversion_before_the_code_is_verified(store: OtpStore) -> None:
    # Given an OTP delivered, its code not verified yet
    otp_id = await sent_twice(store)

    # When it is reported
    report = await store.report(otp_id, NOW)

    # Then no attempt is credited
    assert report.converted_by is None


async def test_an_approval_answers_the_country_and_channel_metrics_count_it_under(store: OtpStore) -> None:
    # Given an OTP to a French number, counted under +33
    otp = replace(new(), country="+33")
    await store.create(otp)
    await store.add_code_hash(otp.otp_id, codes.digest(KEY, otp.otp_id, "123456"), 1, "console")
    await store.mark_delivered(otp.otp_id, 1, "", attempt("console"))

    # When its code is verified
    ticket = await store.verify(otp.otp_id, codes.digest(KEY, otp.otp_id, "123456"), NOW)

    # Then the conversion names the attempt, the country and the channel asked for
    assert ticket.conversion is not None
    assert ticket.conversion.attempt is not None
    assert (ticket.conversion.attempt.vendor, ticket.conversion.country) == ("console", "+33")
    assert ticket.conversion.channel == otp.spec.channel


async def test_a_wrong_code_answers_no_conversion(store: OtpStore) -> None:
    # Given an OTP sent twice
    otp_id = await sent_twice(store)

    # When a wrong code is checked
    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, "999999"), NOW)

    # Then it fails and credits nobody
    assert (ticket.decided, ticket.conversion) == (VerifyStatus.FAILED, None)
    assert (await store.report(otp_id, NOW)).converted_by is None
