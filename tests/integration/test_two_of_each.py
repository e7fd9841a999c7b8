"""Two API processes and two worker processes at once: nothing lost, nothing doubled, verification still atomic."""

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from devtools.processes import free_port
from dispatcher.constants import record_key
from tests.support import Api, Stack, extra_worker, listening, start_process, stop

pytestmark = pytest.mark.slow

SENDS = 100
GUESSES = 40


@pytest.fixture(scope="module")
def second_api_url(stack: Stack) -> Iterator[str]:
    """A second API process and a second worker beside the session's."""
    port = free_port()
    api = start_process(
        "api", stack.env | {"OTP_API_PORT": str(port)}, stack.logs, ready=lambda _: listening(port), name="api-2"
    )
    worker = extra_worker(stack, "twin")
    yield f"http://127.0.0.1:{port}"
    stop(worker)
    stop(api)


@pytest.fixture
def twins(api: Api, second_api_url: str) -> tuple[Api, Api]:
    """Clients of the first and of the second API."""
    return api, Api(dataclasses.replace(api.stack, api_url=second_api_url), api.session, api.redis)


async def test_sends_through_two_apis_are_each_delivered_once(twins: tuple[Api, Api]) -> None:
    first, second = twins

    otp_ids = await asyncio.gather(*((first if i % 2 else second).send() for i in range(SENDS)))
    reports = [await first.delivered(otp_id) for otp_id in otp_ids]

    assert len(set(otp_ids)) == SENDS
    assert all([a["outcome"] for a in report["attempts"]] == ["DELIVERED"] for report in reports)
    assert (await first.calls())["d7"]["send-otp"] == SENDS


async def test_of_correct_verifies_through_two_apis_exactly_one_is_approved(twins: tuple[Api, Api]) -> None:
    first, second = twins
    otp_id, code = await first.console_otp()  # a code the dispatcher generated, checked in Redis

    answers = await asyncio.gather(*((first if i % 2 else second).verify(otp_id, code) for i in range(20)))

    assert sorted(answers) == ["ALREADY_VERIFIED"] * 19 + ["APPROVED"]


async def test_of_correct_d7_verifies_through_two_apis_one_is_approved_after_one_d7_check(
    twins: tuple[Api, Api],
) -> None:
    first, second = twins
    otp_id, code = await first.d7_otp()  # a code D7 generated, checked by D7
    await first.fault("d7", latency_ms=300)  # every verify arrives while the first check is in flight

    answers = await asyncio.gather(*((first if i % 2 else second).verify(otp_id, code) for i in range(50)))

    assert sorted(answers) == ["ALREADY_VERIFIED"] * 49 + ["APPROVED"]
    assert (await first.calls())["d7"]["verify-otp"] == 1


async def test_guesses_through_two_apis_share_one_budget(twins: tuple[Api, Api]) -> None:
    first, second = twins
    otp_id, code = await first.console_otp()  # a code the dispatcher generated, checked in Redis
    wrong = "1" * len(code) if code != "1" * len(code) else "2" * len(code)

    answers = await asyncio.gather(*((first if i % 2 else second).verify(otp_id, wrong) for i in range(GUESSES)))

    assert set(answers) == {"FAILED"}
    assert await second.verify(otp_id, code) == "FAILED"  # the budget of five evaluations is spent
    assert int(first.redis.hget(record_key(otp_id), "verify_attempts") or 0) == 5


async def test_a_resend_through_the_other_api_is_delivered_again(twins: tuple[Api, Api]) -> None:
    first, second = twins
    otp_id = await first.send(retry_delay=0)
    await first.delivered(otp_id)

    status, answer = await second.post("/verify/v1/otp/resend-otp", {"otp_id": otp_id})
    report = await second.delivered(otp_id, count=2)

    assert (status, answer["resend_count"]) == (200, 1)
    assert [(a["send_number"], a["outcome"]) for a in report["attempts"]] == [(1, "DELIVERED"), (2, "DELIVERED")]
