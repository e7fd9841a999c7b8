"""Plain Celery workers for the baselines: no dispatcher code, only Celery, Redis and the sandbox's D7.

``python -m bench.baseline_worker <broker url> <sandbox url> [celery worker options]`` runs a worker of
three tasks on the ``bench.baseline`` queue:

- ``bench.noop``: does nothing (the bare cost of a Celery message);
- ``bench.deliver``: one D7 send-otp POST per message with aiohttp, on one asyncio loop and one session
  shared by the process's threads (the one-message-per-OTP design, run with ``--pool=threads``);
- ``bench.deliver_sync``: the same POST with blocking ``urllib`` (the naive design, run with prefork).

A message carries only a number's index; the worker makes up the number, so no number is in a message.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence

import aiohttp
from celery import Celery

from sandbox import SandboxCredentials

QUEUE = "bench.baseline"
NOOP_TASK = "bench.noop"
DELIVER_TASK = "bench.deliver"
DELIVER_SYNC_TASK = "bench.deliver_sync"
SEND_PATH = "/verify/v1/otp/send-otp"
TIMEOUT = 30.0


def make_app(broker_url: str, sandbox_url: str) -> Celery:
    app = Celery("bench-baseline", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    headers = {"Authorization": f"Bearer {SandboxCredentials().d7_token}", "Content-Type": "application/json"}
    shared = _SharedLoop()

    @app.task(name=NOOP_TASK)  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    @app.task(name=DELIVER_TASK)  # type: ignore[untyped-decorator]
    def deliver(index: int) -> None:
        shared.run(_post(shared, sandbox_url + SEND_PATH, headers, _body(index)))

    @app.task(name=DELIVER_SYNC_TASK)  # type: ignore[untyped-decorator]
    def deliver_sync(index: int) -> None:
        url = sandbox_url + SEND_PATH  # the sandbox's http:// address
        request = urllib.request.Request(url, data=_body(index), headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            response.read()

    return app


def _body(index: int) -> bytes:
    return json.dumps({"recipient": f"+3362{index:08d}", "content": "Your code is {}"}).encode()


async def _post(shared: _SharedLoop, url: str, headers: dict[str, str], body: bytes) -> None:
    async with shared.session().post(url, data=body, headers=headers) as response:
        await response.read()
        response.raise_for_status()


class _SharedLoop:
    """One event loop in a background thread and one aiohttp session per process, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    def run(self, coroutine: object) -> None:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, daemon=True, name="shared-loop").start()
        assert asyncio.iscoroutine(coroutine)
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # only the loop's thread gets here
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        return self._session


def produce(broker_url: str, task: str, count: int, max_seconds: float) -> tuple[int, float]:
    """Publish up to ``count`` messages of ``task`` (the n-th with argument n) with ``apply_async``, for at
    most ``max_seconds``; returns how many, and the CPU seconds it took (the entry point of a producer process)."""
    app = make_app(broker_url, "")
    started = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.monotonic() + max_seconds
    published = 0
    while published < count and time.monotonic() < deadline:
        app.send_task(task, args=[published], queue=QUEUE)
        published += 1
    ended = resource.getrusage(resource.RUSAGE_SELF)
    return published, ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime


def main(argv: Sequence[str]) -> None:
    broker_url, sandbox_url, *celery = argv
    make_app(broker_url, sandbox_url).worker_main(["worker", "--loglevel=INFO", "-Q", QUEUE, *celery])


if __name__ == "__main__":
    main(sys.argv[1:])
