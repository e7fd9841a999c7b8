"""Fixtures of the whole-stack tests that more than one module uses."""

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from devtools.processes import free_port
from tests.support import FLOWER_AUTH, FLOWER_PASSWORD, Stack, start_process


@pytest.fixture(scope="module")
def flower(stack: Stack) -> Iterator[str]:
    """The URL of Flower, as ``otp-dispatcher flower`` runs it against the stack (basic auth: ``FLOWER_AUTH``),
    once it has seen the worker online."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = stack.env | {"OTP_FLOWER_PORT": str(port), "OTP_FLOWER_PASSWORD": FLOWER_PASSWORD}
    process = start_process("flower", env, stack.logs, ready=lambda log: "Visit me at" in log)
    deadline = time.monotonic() + 30
    while not _worker_online(url):
        assert time.monotonic() < deadline, "Flower never saw the worker online"
        time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _worker_online(url: str) -> bool:
    """Whether Flower has seen a worker's heartbeat, so its event receiver is connected."""
    request = urllib.request.Request(url + "/api/workers?status=true", headers=FLOWER_AUTH)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return any(json.load(response).values())
    except OSError:
        return False
