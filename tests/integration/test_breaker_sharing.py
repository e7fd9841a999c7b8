"""Two worker processes share each vendor's circuit breaker through Redis.

Celery's remote control decides which worker consumes the send queue at each step, so the breaker
is opened by one process and honoured by the other.
"""

import subprocess
from collections.abc import Iterator

import pytest
from celery import Celery

from tests.support import Api, Stack, consume_only, control_app, extra_worker


@pytest.fixture(scope="module")
def control(stack: Stack) -> Iterator[Celery]:
    """A second worker, and a remote control of both."""
    worker = extra_worker(stack, "second")
    app = control_app(stack)
    try:
        yield app
    finally:
        consume_only(app, "otp@")
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        app.close()


async def test_a_breaker_opened_by_one_worker_makes_the_other_skip_the_vendor(
    api: Api, stack: Stack, control: Celery
) -> None:
    assert len(consume_only(control, "second@")) == 2
    await api.fault("d7", no_credit=True)
    tripped = await api.delivered(await api.send())
    await api.reset_sandbox()  # d7 is healthy again; its circuit stays open for the cool-down

    consume_only(control, "otp@")
    report = await api.delivered(await api.send())

    assert tripped["attempts"][0]["error_code"] == "INSUFFICIENT_CREDIT"
    assert report["attempts"][0]["error_code"] == "CIRCUIT_OPEN"
    assert report["delivered_by"] == "octopush"
    assert "d7" not in await api.calls()
    worker_logs = {name: (stack.logs / f"{name}.log").read_text() for name in ("worker", "second-worker")}
    assert "INSUFFICIENT_CREDIT" in worker_logs["second-worker"]
    assert "CIRCUIT_OPEN" in worker_logs["worker"]
