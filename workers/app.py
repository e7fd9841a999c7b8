"""The Celery app of the workers, built from ``Settings``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from celery.worker.consumer import Consumer

from config import Settings
from config.heap import freeze_startup_objects
from dispatcher.jobs import celery_config
from workers.metrics import serve
from workers.runtime import close_runtime, current_runtime
from workers.tasks import register_tasks

PREFETCH_MULTIPLIER = 4


class EventFlushingConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, flushing buffered task events through the hub's thread-safe ``call_soon``.

    Celery 5.6 asks for the flush from the pool thread that finished the task by adding to the hub's
    ready set directly: with kombu 5.7 that addition can be lost (no lock, no wake-up), and Flower then
    shows a finished task as RECEIVED. Celery 5.7 does the same as this, but 5.7.0 kills the worker
    when the broker connection drops (excluded in pyproject.toml).
    """

    def on_send_event_buffered(self) -> None:
        if self.hub:
            self.hub.call_soon(self._flush_events)


def make_celery(settings: Settings) -> Celery:
    """The worker app: the shared broker configuration, the worker's own options and the tasks."""
    settings.require("redis_url", "secret_key")
    assert settings.redis_url is not None
    app = Celery("otp-dispatcher")
    app.conf.update(celery_config(settings, settings.redis_url))
    app.conf.update(
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        worker_consumer=f"{__name__}:{EventFlushingConsumer.__name__}",
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    register_tasks(app, settings)

    def warm_up(**_: Any) -> None:
        """Open the loop, the vendor session and the Redis pool before the first job, not during it;
        start the metrics endpoint if one is configured."""
        current_runtime(settings)
        if settings.worker_metrics_port:
            serve(settings.worker_metrics_port, settings.worker_metrics_host)
        freeze_startup_objects()

    worker_ready.connect(warm_up, weak=False)
    worker_process_shutdown.connect(_close_runtime, weak=False)
    worker_shutdown.connect(_close_runtime, weak=False)
    return app


def _close_runtime(**_: Any) -> None:
    close_runtime()
