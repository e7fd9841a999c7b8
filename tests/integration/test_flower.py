"""Flower, as ``otp-dispatcher flower`` runs it: behind basic auth, showing tasks by id only."""

import urllib.request

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
    assert task["args"] == f"[[('{otp_id}', 1)]]"  # a batch of (otp_id, job number) pairs, here of one
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
