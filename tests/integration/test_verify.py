"""Every verify status through the HTTP API, with codes checked locally (console provider) and by D7."""

import asyncio

import redis

from dispatcher.constants import record_key
from tests.support import Api, random_number, wait_for

VERIFY = "/verify/v1/otp/verify-otp"
CHECK_LATENCY_MS = 300
"""How long the sandbox's D7 takes over a check in the concurrency tests, so every concurrent verify arrives
while the first is in flight."""


def wrong_code(code: str) -> str:
    return "1" * len(code) if code != "1" * len(code) else "2" * len(code)


async def test_a_locally_generated_code_is_approved(api: Api) -> None:
    otp_id, code = await api.console_otp()

    assert await api.verify(otp_id, code) == "APPROVED"


async def test_a_locally_generated_code_approved_credits_the_attempt_that_carried_it(api: Api) -> None:
    # Given an OTP the console delivered with a code the dispatcher generated
    otp_id, code = await api.console_otp()

    # When its code is approved
    await api.verify(otp_id, code)

    # Then the report credits the console's attempt of send 1
    converted = (await api.report(otp_id))["converted_by"]
    assert (converted["vendor"], converted["send_number"], converted["outcome"]) == ("console", 1, "DELIVERED")


async def test_a_vendor_code_approved_credits_the_vendor_that_checked_it(api: Api) -> None:
    # Given an OTP whose code D7 generated and delivered
    otp_id, code = await api.d7_otp()

    # When D7 approves its code
    await api.verify(otp_id, code)

    # Then the report credits D7's attempt
    converted = (await api.report(otp_id))["converted_by"]
    assert (converted["vendor"], converted["outcome"]) == ("d7", "DELIVERED")


async def test_a_wrong_code_fails(api: Api) -> None:
    otp_id, code = await api.console_otp()

    assert await api.verify(otp_id, "0000000" if code != "0000000" else "1111111") == "FAILED"


async def test_a_code_verified_twice_is_already_verified(api: Api) -> None:
    otp_id, code = await api.console_otp()
    await api.verify(otp_id, code)

    assert await api.verify(otp_id, code) == "ALREADY_VERIFIED"


async def test_after_five_wrong_codes_the_right_one_fails(api: Api) -> None:
    otp_id, code = await api.console_otp()
    wrong = "1" * len(code) if code != "1" * len(code) else "2" * len(code)
    for _ in range(5):
        assert await api.verify(otp_id, wrong) == "FAILED"

    assert await api.verify(otp_id, code) == "FAILED"


async def test_after_five_wrong_codes_a_d7_code_fails_without_asking_d7(api: Api) -> None:
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)
    await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]
    for wrong in ("99999990", "99999991", "99999992", "99999993", "99999994"):
        await api.verify(otp_id, wrong)

    assert await api.verify(otp_id, code) == "FAILED"
    assert (await api.calls())["d7"]["verify-otp"] == 5


async def test_a_code_verified_after_expiry_is_expired(api: Api) -> None:
    otp_id, code = await api.console_otp(expiry=1)

    async def expired() -> bool | None:
        return True if (await api.report(otp_id))["status"] == "EXPIRED" else None

    await wait_for(expired)
    assert await api.verify(otp_id, code) == "EXPIRED"


async def test_an_unknown_otp_id_fails_like_a_wrong_code(api: Api) -> None:
    assert await api.verify("3f0e1d2c-0000-4000-8000-000000000000", "123456") == "FAILED"


async def test_of_many_concurrent_correct_verifies_exactly_one_is_approved(api: Api) -> None:
    otp_id, code = await api.console_otp()

    results = await asyncio.gather(*(api.verify(otp_id, code) for _ in range(50)))

    assert results.count("APPROVED") == 1
    assert results.count("ALREADY_VERIFIED") == 49


async def test_50_concurrent_correct_d7_verifies_are_one_approved_and_49_already_verified_after_one_d7_check(
    api: Api,
) -> None:
    otp_id, code = await api.d7_otp()
    await api.fault("d7", latency_ms=CHECK_LATENCY_MS)  # every verify arrives while the first check is in flight

    results = await asyncio.gather(*(api.verify(otp_id, code) for _ in range(50)))

    assert sorted(results) == ["ALREADY_VERIFIED"] * 49 + ["APPROVED"]
    assert (await api.calls())["d7"]["verify-otp"] == 1


async def test_20_concurrent_identical_wrong_d7_codes_cost_one_attempt_and_the_right_code_still_approves(
    api: Api, redis_client: redis.Redis
) -> None:
    otp_id, code = await api.d7_otp()
    await api.fault("d7", latency_ms=CHECK_LATENCY_MS)

    results = await asyncio.gather(*(api.verify(otp_id, wrong_code(code)) for _ in range(20)))

    assert results == ["FAILED"] * 20
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "1"
    assert (await api.calls())["d7"]["verify-otp"] == 1
    assert await api.verify(otp_id, code) == "APPROVED"


async def test_a_d7_code_judged_wrong_fails_again_without_asking_d7(api: Api, redis_client: redis.Redis) -> None:
    otp_id, code = await api.d7_otp()
    await api.verify(otp_id, wrong_code(code))

    assert await api.verify(otp_id, wrong_code(code)) == "FAILED"
    assert (await api.calls())["d7"]["verify-otp"] == 1
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "1"


async def test_under_concurrent_distinct_wrong_d7_codes_exactly_five_are_checked_and_the_right_one_then_fails(
    api: Api, redis_client: redis.Redis
) -> None:
    otp_id, code = await api.d7_otp()
    guesses = [f"{i:06d}" for i in range(20) if f"{i:06d}" != code]
    await api.fault("d7", latency_ms=CHECK_LATENCY_MS)

    results = await asyncio.gather(*(api.verify(otp_id, guess) for guess in guesses * 3))

    assert results == ["FAILED"] * len(guesses) * 3
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "5"
    assert (await api.calls())["d7"]["verify-otp"] == 5
    assert await api.verify(otp_id, code) == "FAILED"


async def test_when_d7_cannot_check_every_concurrent_verify_of_a_code_is_503_and_no_attempt_is_spent(
    api: Api, redis_client: redis.Redis
) -> None:
    otp_id, code = await api.d7_otp()
    await api.fault("d7", status=500, latency_ms=CHECK_LATENCY_MS // 3)  # each waiting verify leads in turn

    answers = await asyncio.gather(*(api.post(VERIFY, {"otp_id": otp_id, "otp_code": code}) for _ in range(10)))

    assert [(status, body["detail"]["code"]) for status, body in answers] == [(503, "VENDOR_UNAVAILABLE")] * 10
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "0"


async def test_when_the_leading_d7_check_fails_a_verify_waiting_on_it_checks_the_code_itself(api: Api) -> None:
    otp_id, code = await api.d7_otp()
    await api.fault("d7", status=500, latency_ms=CHECK_LATENCY_MS)
    leader = asyncio.ensure_future(api.post(VERIFY, {"otp_id": otp_id, "otp_code": code}))

    async def leader_at_d7() -> bool | None:
        return True if (await api.calls()).get("d7", {}).get("verify-otp") == 1 else None

    await wait_for(leader_at_d7)
    follower = asyncio.ensure_future(api.verify(otp_id, code))
    await api.fault("d7")  # D7 is back for the calls that come after the leader's

    assert ((await leader)[0], await follower) == (503, "APPROVED")
    assert (await api.calls())["d7"]["verify-otp"] == 2


async def test_under_100_concurrent_wrong_guesses_exactly_five_codes_are_evaluated(
    api: Api, redis_client: redis.Redis
) -> None:
    otp_id, code = await api.console_otp()
    wrong = wrong_code(code)

    results = await asyncio.gather(*(api.verify(otp_id, wrong) for _ in range(100)))

    assert set(results) == {"FAILED"}
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "5"
    assert await api.verify(otp_id, code) == "FAILED"
