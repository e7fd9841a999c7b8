"""Child processes for dev, the tests and the benchmark: start one and wait until it is ready, stop it, free ports.

Shared by ``tests/support.py`` and ``bench/stack.py`` so both start the stack exactly as ``make dev`` does.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def start_process(
    args: list[str], env: dict[str, str], log_path: Path, ready: Callable[[str], bool]
) -> subprocess.Popen[bytes]:
    """``python <args>`` in a subprocess logging to ``log_path``, returned once ``ready(log)``."""
    child = spawn(args, env, log_path)
    wait_ready(child, log_path, ready)
    return child


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=log)


def wait_ready(child: subprocess.Popen[bytes], log_path: Path, ready: Callable[[str], bool]) -> None:
    """Wait until ``ready(log)``; kill the child and raise if it exits or takes over ``START_TIMEOUT``."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready(log_path.read_text(errors="replace")):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            raise RuntimeError(f"{child.args!r} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def stop_processes(children: list[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child, then SIGKILL those still alive after ``timeout`` seconds."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def listening(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
