"""Send jobs on Celery: the broker configuration both sides share, and the publisher the producer side uses.

The producer sends tasks by name (``constants.SEND_TASK``) and never imports worker code. A job
carries only otp_ids with their job numbers (``send_args``, the one shape every publisher uses);
everything else is read from the store by the worker.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from config import RedisEndpoint, RedisOptions, Settings
from dispatcher.constants import QUEUES, SEND_QUEUE, SEND_TASK
from dispatcher.errors import ServiceUnavailable
from dispatcher.schemas import SendJob
from dispatcher.store.connection import tls_files

PUBLISH_THREADS = 8
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Broker and serialisation settings (the API's publisher, the workers, Flower and the CLI's control
    commands all use these); the worker app adds its own on top."""
    settings.require("redis_url")
    endpoint = settings.broker_redis
    assert endpoint is not None
    timeout = endpoint.timeout
    return {
        "broker_url": broker_url(endpoint),
        "broker_use_ssl": broker_tls(endpoint.options) if urlsplit(endpoint.url).scheme == "rediss" else False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            # Workers look for jobs of dead workers ten times per visibility timeout.
            "unacked_restore_interval": max(1, settings.visibility_timeout // 10),
            "unacked_restore_throttle": 1,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            **sentinel_options(endpoint),
        },
        "broker_pool_limit": PUBLISH_THREADS,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": SEND_QUEUE,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "enable_utc": True,
        "timezone": "UTC",
    }


def broker_url(endpoint: RedisEndpoint) -> str:
    """kombu's address of the Redis at ``endpoint``: its URL with the ACL user and password of its options;
    a socket (redis-py's ``unix://``) is kombu's ``redis+socket://``, with the database as its virtual host;
    sentinels are one ``sentinel://`` URL each, joined by ``;`` (kombu's fail-over list)."""
    parts = urlsplit(endpoint.url)
    user = endpoint.options.username
    password = endpoint.options.password.get_secret_value()
    login = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user or password else ""
    if parts.scheme == "unix":
        database = parse_qs(parts.query).get("db", ["0"])[0]
        return f"redis+socket://{login}{parts.path}?virtual_host={database}"
    if endpoint.sentinels:
        return ";".join(f"sentinel://{login}{host}:{port}/{endpoint.database}" for host, port in endpoint.sentinels)
    return urlunsplit(parts._replace(netloc=login + parts.netloc)) if login else endpoint.url


def sentinel_options(endpoint: RedisEndpoint) -> dict[str, Any]:
    """kombu's transport options for a Sentinel-managed broker: the master's name and how to reach the
    sentinels (none for any other broker)."""
    if not endpoint.sentinels:
        return {}
    sentinels: dict[str, Any] = {"socket_timeout": endpoint.timeout, "socket_connect_timeout": endpoint.timeout}
    if endpoint.options.sentinel_password.get_secret_value():
        sentinels["password"] = endpoint.options.sentinel_password.get_secret_value()
    return {"master_name": endpoint.options.master_name, "sentinel_kwargs": sentinels}


def broker_tls(options: RedisOptions) -> dict[str, Any]:
    """kombu's ``broker_use_ssl`` for a ``rediss://`` broker: the server's certificate verified, against
    ``ca_file`` when set, with the client's certificate when set."""
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED} | tls_files(options)


def queue_lengths(app: Celery) -> dict[str, int]:
    """Jobs waiting in each queue, read from ``app``'s broker (kombu's Redis transport keeps a queue as one
    list), which need not be the store's Redis (``OTP_BROKER_URL``). Blocking; raises what kombu raises."""
    with app.connection_for_read() as connection:
        client = connection.default_channel.client
        return {queue: int(client.llen(queue)) for queue in QUEUES}


def send_args(jobs: Iterable[SendJob]) -> list[list[list[str | int]]]:
    """The send task's arguments for ``jobs``: one argument, the batch of ``[otp_id, job number]`` pairs.
    Lists, not the ``SendJob`` tuples, so that a job reads the same in Flower (``[[['<otp_id>', 1]]]``)
    whoever published it: the API, a worker's retry or the sweeper."""
    return [[[job.otp_id, job.job_seq] for job in jobs]]


class JobQueue:
    """Publishes send jobs from async code, never blocking the event loop.

    Adaptive batching: a job is published at once when no publish is under way and none began in the
    last ``Settings.job_linger`` seconds; the jobs that arrive meanwhile wait and then go together, as
    one Celery message (up to ``Settings.job_batch``; a full batch does not wait). So an idle API adds
    no delay, a busy one publishes at most one message per linger, and Celery's per-message cost (about
    2.5 ms of CPU between API and worker at moderate rates, README "Benchmarks") is paid per batch
    instead of per OTP. Each caller returns only once its own job is in the broker.
    """

    def __init__(self, settings: Settings) -> None:
        self._celery = Celery("otp-dispatcher-producer", set_as_current=False)
        self._celery.conf.update(celery_config(settings))
        self._pool = ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="publish")
        self._deadline = 2 * settings.redis_timeout
        self._batch = settings.job_batch
        self._linger = settings.job_linger
        self._last_publish = float("-inf")
        self._waiting: list[_Waiting] = []
        self._publisher: asyncio.Task[None] | None = None

    async def queue_depths(self) -> dict[str, int]:
        """Jobs waiting in each queue, read from the broker (kombu's Redis transport keeps a queue as one list),
        which need not be the store's Redis (``OTP_BROKER_URL``); ``ServiceUnavailable`` if it does not answer."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, queue_lengths, self._celery), self._deadline)
        except (TimeoutError, KombuError, RedisError, OSError) as exc:
            raise ServiceUnavailable("The job queue (broker) is not answering; try again shortly.") from exc

    async def enqueue_send(self, job: SendJob, expires_at: float) -> None:
        """Queue one delivery of ``job.otp_id``; the job is dropped unstarted once the OTP has expired."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(job, expires_at, loop.create_future())
        self._waiting.append(waiting)
        if self._publisher is None or self._publisher.done():
            self._publisher = loop.create_task(self._publish_waiting())
        await waiting.published

    async def _publish_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            pause = self._last_publish + self._linger - loop.time()
            if pause > 0 and len(self._waiting) < self._batch:
                await asyncio.sleep(pause)
            self._last_publish = loop.time()
            batch, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            jobs = [waiting.job for waiting in batch]
            expires = datetime.fromtimestamp(max(waiting.expires_at for waiting in batch), tz=UTC)
            try:
                await asyncio.wait_for(loop.run_in_executor(self._pool, self._publish, jobs, expires), self._deadline)
            except (TimeoutError, KombuError, RedisError, OSError) as exc:
                error = ServiceUnavailable("The job queue (broker) is not answering; try again shortly.")
                error.__cause__ = exc
                _settle(batch, error)
            else:
                _settle(batch, None)

    def _publish(self, jobs: list[SendJob], expires: datetime) -> None:
        self._celery.send_task(
            SEND_TASK,
            args=send_args(jobs),
            queue=SEND_QUEUE,
            expires=expires,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    async def close(self) -> None:
        if self._publisher is not None:
            await asyncio.gather(self._publisher, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._celery.close()


@dataclass(frozen=True, slots=True)
class _Waiting:
    job: SendJob
    expires_at: float
    published: asyncio.Future[None]


def _settle(batch: list[_Waiting], error: ServiceUnavailable | None) -> None:
    for waiting in batch:
        if waiting.published.done():  # its caller gave up (request cancelled)
            continue
        if error is None:
            waiting.published.set_result(None)
        else:
            waiting.published.set_exception(error)
