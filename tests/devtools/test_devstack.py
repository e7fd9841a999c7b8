"""``otp-dispatcher dev`` (what ``make dev`` runs): up, the README walkthrough works, SIGTERM stops all."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.processes import free_port

STOP_WITHIN = 10.0


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def call(url: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    ports = {"api": free_port(), "sandbox": free_port(), "flower": free_port()}
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")} | {
        "OTP_DATA_DIR": str(tmp_path / "data"),
        "OTP_API_PORT": str(ports["api"]),
        "OTP_SANDBOX_PORT": str(ports["sandbox"]),
        "OTP_FLOWER_PORT": str(ports["flower"]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    for line in process.stdout:
        if "token:" in line and "API" in line:
            banner["token"] = line.split("token:")[1].strip()
        if line.strip().startswith("Walkthrough"):
            break
        assert time.monotonic() < deadline, "dev stack did not come up"
    banner |= {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        yield process, banner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.mark.slow
def test_the_dev_stack_serves_the_walkthrough_and_stops_cleanly_on_sigterm(
    dev_stack: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, urls = dev_stack
    recipient = "+33612345678"
    sent = call(urls["api"] + "/verify/v1/otp/send-otp", {"recipient": recipient, "content": "Code {}"}, urls["token"])
    deadline = time.monotonic() + 15
    while True:
        report = call(f"{urls['api']}/verify/v1/report/{sent['otp_id']}", token=urls["token"])
        if report["delivered_by"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    code = call(f"{urls['sandbox']}/inbox/{recipient}")["code"]
    verified = call(
        urls["api"] + "/verify/v1/otp/verify-otp", {"otp_id": sent["otp_id"], "otp_code": code}, urls["token"]
    )
    assert verified == {"status": "APPROVED"}
    children = children_of(process.pid)
    assert len(children) >= 5  # redis, sandbox, api, worker, flower

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(STOP_WITHIN + 2)

    assert time.monotonic() - started < STOP_WITHIN
    assert not {pid for pid in children if Path(f"/proc/{pid}").exists()}
