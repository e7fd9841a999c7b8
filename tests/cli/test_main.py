"""The ``otp-dispatcher`` command's handling of bad configuration: one line, exit status 2."""

import os
import subprocess
import sys


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=clean | env, capture_output=True, text=True, timeout=60
    )


def test_an_invalid_setting_stops_start_up_with_one_line_and_no_traceback() -> None:
    result = run("api", OTP_API_PORT="eighty")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "api_port" in result.stderr
    assert "OTP_API_PORT" in result.stderr
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
