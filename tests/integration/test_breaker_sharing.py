"""Two worker processes share each vendor's circuit breaker through Redis.

Celery's remote control decides which worker consumes the send queue at each step, so the breaker
is opened by one process and honoured by the other.
"""

import subprocess
from collections.abc import Iterator

import pytest
from celery import Celery

from dispatcher.constants import SEND_QUEUE
from dispatcher.jobs import celery_config
from tests.support import Api, Stack, start_process

FIRST, SECOND = "otp@", "second@"


@pytest.fixture(scope="module")
def control(stack: Stack) -> Iterator[tuple[Celery, list[str]]]:
    """A second worker, and the names of both workers as Celery's control knows them."""
    worker = start_process(
        "worker",
        stack.env | {"OTP_WORKER_METRICS_PORT": "0"},  # the session worker has the port
        stack.logs,
        ready=lambda log: "ready." in log,
        extra=["--", "--concurrency=4", "-n", "second@%h"],
        name="second-worker",
    )
    app = Celery(set_as_current=False)
    app.conf.update(celery_config(stack.settings, stack.redis_url))
    names = sorted(name for reply in app.control.ping(timeout=2.0) for name in reply)
    try:
        yield app, names
    finally:
        first = next(name for name in names if name.startswith(FIRST))
        app.control.add_consumer(SEND_QUEUE, destination=[first], reply=True, timeout=2.0)
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        app.close()


def only(control: tuple[Celery, list[str]], prefix: str) -> None:
    """Let only the worker whose name starts with ``prefix`` consume the send queue."""
    app, names = control
    for name in names:
        if name.startswith(prefix):
            app.control.add_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)
        else:
            app.control.cancel_consumer(SEND_QUEUE, destination=[name], reply=True, timeout=2.0)


async def test_a_breaker_opened_by_one_worker_makes_the_other_skip_the_vendor(
    api: Api, stack: Stack, control: tuple[Celery, list[str]]
) -> None:
    assert len(control[1]) == 2
    only(control, SECOND)
    await api.fault("d7", no_credit=True)
    tripped = await api.delivered(await api.send())
    await api.reset_sandbox()  # d7 is healthy again; its circuit stays open for the cool-down

    only(control, FIRST)
    report = await api.delivered(await api.send())

    assert tripped["attempts"][0]["error_code"] == "INSUFFICIENT_CREDIT"
    assert report["attempts"][0]["error_code"] == "CIRCUIT_OPEN"
    assert report["delivered_by"] == "octopush"
    assert "d7" not in await api.calls()
    worker_logs = {name: (stack.logs / f"{name}.log").read_text() for name in ("worker", "second-worker")}
    assert "INSUFFICIENT_CREDIT" in worker_logs["second-worker"]
    assert "CIRCUIT_OPEN" in worker_logs["worker"]
