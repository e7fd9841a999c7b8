"""Every verify status through the HTTP API, with codes checked locally (console provider) and by D7."""

import asyncio

import redis

from dispatcher.constants import record_key
from tests.support import Api, random_number, wait_for


async def test_a_locally_generated_code_is_approved(api: Api) -> None:
    otp_id, code = await api.console_otp()

    assert await api.verify(otp_id, code) == "APPROVED"


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
    for _ in range(5):
        await api.verify(otp_id, "99999999")

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


async def test_of_many_concurrent_correct_d7_verifies_exactly_one_is_approved(api: Api) -> None:
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)
    await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]

    results = await asyncio.gather(*(api.verify(otp_id, code) for _ in range(20)))

    assert results.count("APPROVED") == 1


async def test_under_100_concurrent_wrong_guesses_exactly_five_codes_are_evaluated(
    api: Api, redis_client: redis.Redis
) -> None:
    otp_id, code = await api.console_otp()
    wrong = "1" * len(code) if code != "1" * len(code) else "2" * len(code)

    results = await asyncio.gather(*(api.verify(otp_id, wrong) for _ in range(100)))

    assert set(results) == {"FAILED"}
    assert redis_client.hget(record_key(otp_id), "verify_attempts") == "5"
    assert await api.verify(otp_id, code) == "FAILED"
