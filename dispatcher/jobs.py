"""Send jobs on Celery: the broker configuration both sides share, and the publisher the producer side uses.

The producer sends tasks by name (``constants.SEND_TASK``) and never imports worker code. A job
carries only the otp_id; everything else is read from the store by the worker.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from config import Settings
from dispatcher.constants import SEND_QUEUE, SEND_TASK
from dispatcher.errors import ServiceUnavailable

PUBLISH_THREADS = 8
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}


def celery_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    """Broker and serialisation settings; the worker app adds its own on top of these."""
    timeout = settings.redis_timeout
    return {
        "broker_url": redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
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


class JobQueue:
    """Publishes send jobs from async code through a small thread pool, so the event loop never blocks."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self._celery = Celery("otp-dispatcher-producer", set_as_current=False)
        self._celery.conf.update(celery_config(settings, redis_url))
        self._pool = ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="publish")
        self._deadline = 2 * settings.redis_timeout

    async def enqueue_send(self, otp_id: str, expires_at: float) -> None:
        """Queue one delivery of ``otp_id``; the job is dropped unstarted once the OTP has expired."""
        loop = asyncio.get_running_loop()
        expires = datetime.fromtimestamp(expires_at, tz=UTC)
        try:
            await asyncio.wait_for(
                loop.run_in_executor(self._pool, self._publish, otp_id, expires), timeout=self._deadline
            )
        except (TimeoutError, KombuError, RedisError, OSError) as exc:
            raise ServiceUnavailable("The job queue (broker) is not answering; try again shortly.") from exc

    def _publish(self, otp_id: str, expires: datetime) -> None:
        self._celery.send_task(
            SEND_TASK,
            args=[otp_id],
            queue=SEND_QUEUE,
            expires=expires,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._celery.close()
