"""``otp-dispatcher dev`` (what ``make dev`` runs): up, the README walkthrough works, SIGTERM stops all."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.processes import free_port
from tests.support import random_number

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
    deadline = time.monotonic() + 15
    while report["attempts"][-1]["receipt"] == "NONE" and time.monotonic() < deadline:
        time.sleep(0.05)
        report = call(f"{urls['api']}/verify/v1/report/{sent['otp_id']}", token=urls["token"])
    assert report["attempts"][-1]["receipt"] == "DELIVERED"  # D7's receipt reached the dev API
    children = children_of(process.pid)
    assert len(children) >= 5  # redis, sandbox, api, worker, flower

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(STOP_WITHIN + 2)

    assert time.monotonic() - started < STOP_WITHIN
    assert not {pid for pid in children if Path(f"/proc/{pid}").exists()}


@dataclass
class DevRun:
    """A dev stack started with a config file of overrides, and everything it has printed so far."""

    process: subprocess.Popen[str]
    output: list[str]
    urls: dict[str, str]
    data_dir: Path

    def printed(self) -> str:
        return "".join(self.output)


AMENDING_CONFIG = """\
[[providers]]
name = "d7"
enabled = false

[routes]
"+33" = ["octopush"]
"""


@pytest.fixture(scope="module")
def amended_dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    """``otp-dispatcher dev`` with a config file that disables the dev chain's d7 and routes +33 to octopush;
    its output is read on a thread, so the test can look at what it printed after the banner."""
    directory = tmp_path_factory.mktemp("dev")
    config = directory / "otp.toml"
    config.write_text(AMENDING_CONFIG)
    ports = {"api": free_port(), "sandbox": free_port(), "flower": free_port()}
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")} | {
        "OTP_DATA_DIR": str(directory / "data"),
        "OTP_CONFIG_FILE": str(config),
        "OTP_API_PORT": str(ports["api"]),
        "OTP_SANDBOX_PORT": str(ports["sandbox"]),
        "OTP_FLOWER_PORT": str(ports["flower"]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
    reader.start()
    run = DevRun(
        process, output, {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, directory / "data"
    )
    try:
        wait_until(lambda: "Walkthrough" in run.printed(), "the dev stack did not come up")
        run.urls["token"] = run.printed().split("token:")[1].split()[0]
        yield run
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WITHIN + 2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)
        process.stdout.close()


def wait_until(condition: Callable[[], bool], failure: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


@pytest.mark.slow
def test_a_config_file_of_overrides_and_routes_amends_the_dev_chain(amended_dev_stack: DevRun) -> None:
    urls = amended_dev_stack.urls
    recipient = random_number()

    sent = call(urls["api"] + "/verify/v1/otp/send-otp", {"recipient": recipient, "content": "Code {}"}, urls["token"])

    report: dict[str, Any] = {}

    def delivered() -> bool:
        report.update(call(f"{urls['api']}/verify/v1/report/{sent['otp_id']}", token=urls["token"]))
        return bool(report["delivered_by"])

    wait_until(delivered, "the OTP was not delivered", within=15)
    wait_until(lambda: delivered() and report["attempts"][-1]["receipt"] != "NONE", "no receipt came", within=15)
    assert report["delivered_by"] == "octopush"
    assert [attempt["vendor"] for attempt in report["attempts"]] == ["octopush"]
    assert report["attempts"][-1]["receipt"] == "DELIVERED"  # dev points Octopush's account callback at the API
    assert "Chain     octopush, messagecentral, console" in amended_dev_stack.printed()


@pytest.mark.slow
def test_the_banner_prints_the_postback_secret_and_where_invented_secrets_are_kept(
    amended_dev_stack: DevRun,
) -> None:
    invented = json.loads((amended_dev_stack.data_dir / "dev-secrets.json").read_text())
    banner = amended_dev_stack.printed()

    assert f"signed with OTP_POSTBACK_SECRET: {invented['postback_secret']}" in banner
    assert f"kept in {amended_dev_stack.data_dir / 'dev-secrets.json'}" in banner


@pytest.mark.slow
def test_the_dev_worker_prints_no_warning_about_running_as_root(amended_dev_stack: DevRun) -> None:
    wait_until(lambda: " ready." in amended_dev_stack.printed(), "the dev worker never said it was ready")

    assert "superuser privileges" not in amended_dev_stack.printed()
