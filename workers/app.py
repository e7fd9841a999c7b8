"""The Celery app of the workers, built from ``Settings``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

from config import Settings
from config.heap import freeze_startup_objects
from dispatcher.jobs import celery_config
from workers.events import EventFlushingConsumer, TaskEvents
from workers.metrics import serve
from workers.runtime import close_runtime, current_runtime
from workers.tasks import register_tasks

PREFETCH_MULTIPLIER = 4


def make_celery(settings: Settings) -> Celery:
    """The worker app: the shared broker configuration, the worker's own options and the tasks."""
    settings.require("redis_url", "secret_key")
    assert settings.redis_url is not None
    app = Celery("otp-dispatcher", events=TaskEvents)
    app.conf.update(celery_config(settings))
    app.conf.update(
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        worker_consumer=f"{EventFlushingConsumer.__module__}:{EventFlushingConsumer.__name__}",
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
