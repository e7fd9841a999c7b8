"""The ``otp-dispatcher`` command's handling of bad configuration: one line, exit status 2."""

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devtools.processes import free_port, listening, start_process, stop_processes
from tests.support import Stack


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=clean | env, capture_output=True, text=True, timeout=60
    )


def test_an_invalid_setting_stops_start_up_with_one_line_and_no_traceback() -> None:
    result = run("api", OTP_API_PORT="eighty")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "OTP_API_PORT: Input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_without_tokens_names_the_missing_variable() -> None:
    result = run("api", OTP_REDIS_URL="redis://127.0.0.1:1/0", OTP_SECRET_KEY="secret")

    assert result.returncode == 2
    assert "OTP_API_TOKENS" in result.stderr


def test_a_worker_without_a_secret_key_names_the_missing_variable() -> None:
    result = run("worker", OTP_REDIS_URL="redis://127.0.0.1:1/0")

    assert result.returncode == 2
    assert "OTP_SECRET_KEY" in result.stderr


def test_flower_refuses_to_start_without_a_password() -> None:
    result = run("flower", OTP_REDIS_URL="redis://127.0.0.1:1/0", OTP_SECRET_KEY="secret")

    assert result.returncode == 2
    assert "OTP_FLOWER_PASSWORD" in result.stderr


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_worker_without_a_provider_chain_refuses_to_start_saying_what_to_set() -> None:
    result = run("worker", OTP_REDIS_URL="redis://127.0.0.1:1/0", OTP_SECRET_KEY="secret")

    assert result.returncode == 2
    line = one_line(result)
    assert "no provider chain is configured" in line
    assert "OTP_PROVIDERS" in line
    assert "[[providers]]" in line
    assert "OTP_CONFIG_FILE" in line


@pytest.mark.parametrize("command", ["api", "worker", "flower"])
@pytest.mark.parametrize("url", ["notaurl", "http://x", "redis://host:notaport"])
def test_a_bad_redis_url_stops_every_process_with_one_line_naming_it(command: str, url: str) -> None:
    result = run(command, OTP_REDIS_URL=url, OTP_SECRET_KEY="s", OTP_API_TOKENS="t", OTP_FLOWER_PASSWORD="p")

    assert result.returncode == 2
    assert one_line(result).startswith("otp-dispatcher: configuration error: OTP_REDIS_URL: ")


def test_an_invalid_value_in_the_file_names_the_file_and_key_not_a_variable(tmp_path: Path) -> None:
    config = tmp_path / "otp.toml"
    config.write_text(
        '[[providers]]\nname = "console"\nkind = "console"\nbase_url = "http://127.0.0.1:1"\ntimeout = 0\n'
    )

    result = run("api", OTP_CONFIG_FILE=str(config))

    assert result.returncode == 2
    assert one_line(result) == (
        f"otp-dispatcher: configuration error: {config}: providers[0].timeout: Input should be greater than 0"
    )


def test_the_api_runs_without_a_provider_chain(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")}
    env |= {"OTP_REDIS_URL": redis_url, "OTP_SECRET_KEY": "s", "OTP_API_TOKENS": "t", "OTP_API_PORT": str(port)}

    api = start_process(["-m", "cli", "api"], env, tmp_path / "api.log", ready=lambda _: listening(port))

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
    finally:
        stop_processes([api])


def test_ping_exits_0_when_the_worker_answers_and_1_naming_a_node_that_does_not(stack: Stack) -> None:
    ping = [sys.executable, "-m", "cli", "ping"]

    answered = subprocess.run(ping, env=stack.env, capture_output=True, text=True, timeout=30, check=False)
    silent = subprocess.run(
        [*ping, "--node", "nobody@nowhere"], env=stack.env, capture_output=True, text=True, timeout=30, check=False
    )

    assert answered.returncode == 0, answered.stderr
    assert (silent.returncode, silent.stderr.strip()) == (1, "otp-dispatcher: no answer from nobody@nowhere within 5 s")
