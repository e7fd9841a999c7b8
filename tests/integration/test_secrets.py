"""Nothing sensitive crosses Redis: every command of a full send → deliver → verify, broker messages
included, is captured with MONITOR and searched for the number and the code."""

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from dispatcher.constants import SEND_QUEUE
from tests.support import Api, Stack, random_number


@contextmanager
def monitored(redis_url: str) -> Iterator[list[str]]:
    """Every command Redis executes while inside, as text."""
    captured: list[str] = []
    stop = threading.Event()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    monitor = client.monitor()
    monitor.__enter__()

    def listen() -> None:
        while not stop.is_set():
            captured.append(monitor.next_command()["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield captured
    finally:
        stop.set()
        client.ping()  # wakes the listener so it sees the stop flag
        thread.join(5)
        monitor.__exit__(None, None, None)
        client.close()


def job_bodies(commands: list[str]) -> list[object]:
    """The decoded bodies of the Celery messages pushed on the send queue."""
    bodies = []
    for command in commands:
        if command.startswith(f"LPUSH {SEND_QUEUE} "):
            envelope = json.loads(command.removeprefix(f"LPUSH {SEND_QUEUE} ").replace('\\"', '"'))
            bodies.append(json.loads(base64.b64decode(envelope["body"])))
    return bodies


async def test_no_number_and_no_code_reach_redis_or_the_broker(api: Api, stack: Stack) -> None:
    await api.only_console()  # a code the dispatcher generates
    recipient = random_number()
    with monitored(stack.redis_url) as commands:
        otp_id = await api.send(recipient=recipient, retry_delay=0)
        await api.delivered(otp_id)
        code = (await api.inbox(recipient))["code"]
        assert await api.verify(otp_id, code) == "APPROVED"

    bodies = job_bodies(commands)
    assert bodies, "the send job was not seen on the broker"
    assert all(body[:2] == [[[[otp_id, 1]]], {}] for body in bodies)  # type: ignore[index]
    everything = "\n".join(commands) + json.dumps(bodies)
    assert recipient[1:] not in everything
    assert f" {code}" not in everything
    assert f'"{code}"' not in everything


async def test_no_number_and_no_code_reach_the_logs(api: Api, stack: Stack) -> None:
    await api.only_console()
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, otp_type="alphanumeric", otp_code_length=10, retry_delay=0)
    await api.delivered(otp_id)
    await api.post("/verify/v1/otp/resend-otp", {"otp_id": otp_id})
    await api.delivered(otp_id, count=2)
    code = (await api.inbox(recipient))["code"]
    assert await api.verify(otp_id, code) == "APPROVED"

    logs = "".join((stack.logs / f"{name}.log").read_text() for name in ("api", "worker"))

    assert otp_id in logs  # the logs do speak of this OTP...
    assert recipient[1:] not in logs  # ...but never with its number
    assert code not in logs
