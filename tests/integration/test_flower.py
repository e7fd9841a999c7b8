"""Flower, as ``otp-dispatcher flower`` runs it: behind basic auth, showing tasks by id only, and what became
of each OTP (an operator searches an otp_id and reads its tasks' states, results and exceptions)."""

import re
import urllib.request
from typing import Any

import aiohttp
import pytest

from devtools.processes import free_port
from tests.support import FLOWER_AUTH, Api, Stack, random_number, start_process, wait_for

SENDS_ONE_BY_ONE = 300
"""Each its own Celery task (no send overlaps the next), so a lost task event shows as a task never final."""


@pytest.mark.parametrize("path", ["/", "/tasks", "/workers", "/api/tasks", "/api/workers", "/api/queues/length"])
async def test_flower_answers_401_without_credentials(flower: str, path: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(flower + path) as response:
        assert response.status == 401


async def test_flower_shows_the_send_task_with_only_the_otp_id(flower: str, api: Api) -> None:
    await api.only_console()  # a code the dispatcher generates, so it passes through the worker
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, otp_type="alphanumeric", otp_code_length=10)
    await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]
    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:

        async def seen() -> dict[str, dict[str, object]] | None:
            async with session.get(flower + "/api/tasks") as response:
                tasks: dict[str, dict[str, object]] = await response.json()
            mine = {i: t for i, t in tasks.items() if otp_id in str(t.get("args")) and t.get("state") == "SUCCESS"}
            return mine or None

        tasks = await wait_for(seen)
        async with session.get(flower + "/api/tasks") as response:
            everything = await response.text()
        for path in ("/api/workers", "/tasks", "/metrics"):  # /metrics is open by Flower's design: counts only
            async with session.get(flower + path) as response:
                everything += await response.text()

    task = next(iter(tasks.values()))
    assert task["name"] == "otp.send"
    assert task["args"] == f"[[['{otp_id}', 1]]]"  # a batch of [otp_id, job number] pairs, here of one
    assert recipient[1:] not in everything
    assert code not in everything


def test_a_local_only_flower_needs_no_password(stack: Stack) -> None:
    port = free_port()
    env = {key: value for key, value in stack.env.items() if key != "OTP_FLOWER_PASSWORD"}
    env |= {"OTP_FLOWER_PORT": str(port), "OTP_FLOWER_HOST": "0.0.0.0"}
    process = start_process(
        "flower", env, stack.logs, ready=lambda log: "Visit me at" in log, extra=["--local-only"], name="flower-local"
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/workers", timeout=5) as response:
            assert response.status == 200
        assert f"http://127.0.0.1:{port}" in (stack.logs / "flower-local.log").read_text()
    finally:
        process.terminate()
        process.wait(10)


async def test_every_task_of_sends_made_one_by_one_ends_final_in_flower(flower: str, api: Api) -> None:
    otp_ids = [await api.send(recipient=random_number()) for _ in range(SENDS_ONE_BY_ONE)]
    for otp_id in otp_ids:
        await api.delivered(otp_id)

    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:

        async def states() -> dict[str, str] | None:
            async with session.get(flower + "/api/tasks", params={"taskname": "otp.send"}) as response:
                tasks: dict[str, dict[str, object]] = await response.json()
            mine = {
                otp_id: str(task["state"])
                for task in tasks.values()
                for otp_id in otp_ids
                if otp_id in str(task["args"])
            }
            return mine if len(mine) == len(otp_ids) and set(mine.values()) == {"SUCCESS"} else None

        final = await wait_for(states, within=30)

    assert set(final) == set(otp_ids)


async def test_an_otp_every_vendor_failed_shows_its_task_failed_naming_it(flower: str, api: Api) -> None:
    # Given every vendor out of credit and the console provider failing: the OTP fails on every one
    await api.only_console()
    await api.fault("console", status=500)
    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:
        failed_before = await failed_count(session, flower)

        # When it is sent
        otp_id = await api.send()
        assert (await api.delivered(otp_id))["status"] == "FAILED"

        # Then its last task is FAILURE, its exception naming the OTP, and Flower's Failed count moved
        async def failed() -> dict[str, Any] | None:
            tasks = await tasks_of(session, flower, otp_id)
            return next((task for task in tasks if task["state"] == "FAILURE"), None)

        task = await wait_for(failed)
        assert await failed_count(session, flower) == failed_before + 1
    assert task["exception"] == f"AllOtpsFailed('otp {otp_id}: FAILED')"


async def test_a_delivered_otps_task_result_says_delivered_with_only_its_otp_id(flower: str, api: Api) -> None:
    # Given a code the dispatcher generates, so it passes through the worker
    await api.only_console()
    recipient = random_number()

    # When an OTP is sent and delivered
    otp_id = await api.send(recipient=recipient, otp_type="alphanumeric", otp_code_length=10)
    await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]

    # Then its task's result names it DELIVERED, and nothing else: no number, no code
    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:
        [task] = await wait_for(lambda: final_tasks(session, flower, otp_id, count=1))
    assert task["state"] == "SUCCESS"
    assert task["result"] == repr({otp_id: "DELIVERED"})
    assert recipient[1:] not in task["result"]
    assert code not in task["result"]


async def test_searching_an_otp_id_finds_its_first_task_retried_and_its_retry_task(flower: str, api: Api) -> None:
    # Given D7 failing for a while (a temporary error: retried once, then the OTP fails over to Octopush)
    await api.fault("d7", status=503)

    # When an OTP is sent
    otp_id = await api.send()
    assert (await api.delivered(otp_id))["delivered_by"] == "octopush"

    # Then searching Flower for its id finds its first task, RETRY naming the retry task, and that task, SUCCESS
    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:
        first, retry = await wait_for(lambda: final_tasks(session, flower, otp_id, count=2))
    assert (first["state"], retry["state"]) == ("RETRY", "SUCCESS")
    assert first["exception"] == f"OtpsRunAgain('otp {otp_id}: {retried_as(first)}')"
    assert f"task {retry['uuid']})" in first["exception"]
    assert retry["result"] == repr({otp_id: "DELIVERED"})


async def test_a_first_task_and_its_retry_show_the_same_argument_shape(flower: str, api: Api) -> None:
    # Given D7 failing for a while, so the OTP's send runs twice
    await api.fault("d7", status=503)

    # When an OTP is sent
    otp_id = await api.send()
    await api.delivered(otp_id)

    # Then the API's job and the worker's retry read alike: [[otp_id, job number]]
    async with aiohttp.ClientSession(headers=FLOWER_AUTH) as session:
        first, retry = await wait_for(lambda: final_tasks(session, flower, otp_id, count=2))
    assert first["args"] == f"[[['{otp_id}', 1]]]"
    assert retry["args"] == f"[[['{otp_id}', 2]]]"


async def tasks_of(session: aiohttp.ClientSession, flower: str, otp_id: str) -> list[dict[str, Any]]:
    """The send tasks Flower finds searching for ``otp_id``, oldest first."""
    params = {"taskname": "otp.send", "search": otp_id, "sort_by": "received"}
    async with session.get(flower + "/api/tasks", params=params) as response:
        assert response.status == 200, await response.text()
        tasks: dict[str, dict[str, Any]] = await response.json()
    return list(tasks.values())


async def final_tasks(
    session: aiohttp.ClientSession, flower: str, otp_id: str, count: int
) -> list[dict[str, Any]] | None:
    """The OTP's ``count`` send tasks, once Flower has seen each of them end."""
    tasks = await tasks_of(session, flower, otp_id)
    ended = [task for task in tasks if task["state"] in ("SUCCESS", "FAILURE", "RETRY")]
    return ended if len(ended) == count else None


async def failed_count(session: aiohttp.ClientSession, flower: str) -> int:
    """The Failed count of Flower's workers page: task-failed events of every worker."""
    async with session.get(flower + "/workers", params={"json": "1"}) as response:
        workers: list[dict[str, Any]] = (await response.json())["data"]
    return sum(int(worker.get("task-failed", 0)) for worker in workers)


def retried_as(task: dict[str, Any]) -> str:
    """The fate a RETRY task gives its OTP, as its exception reads it (the delay has jitter)."""
    found = re.search(r"RETRY in \d+\.\d\d s as job 2 \(task [0-9a-f-]+\)", str(task["exception"]))
    assert found, task
    return found.group()
