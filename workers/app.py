"""The Celery app of the workers, built from ``Settings``."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.signals import task_received, worker_process_shutdown, worker_ready, worker_shutdown

from config import Settings
from config.heap import freeze_startup_objects
from dispatcher.constants import SEND_TASK
from dispatcher.jobs import celery_config
from workers.events import EventFlushingConsumer, TaskEvents
from workers.metrics import CIRCUIT_OPEN, SCRAPE_TIMEOUT, serve
from workers.runtime import close_runtime, current_runtime
from workers.tasks import Jobs, register_tasks

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
    jobs = Jobs(app, settings)
    register_tasks(app, settings, jobs)

    def warm_up(**_: Any) -> None:
        """Open the loop, the vendor session and the Redis pool before the first job, not during it; start
        the sweeper, and the metrics endpoint if one is configured."""
        runtime = current_runtime(settings)
        runtime.start_background(jobs.send_backlog, jobs.queue_lost, jobs.queue_postback, jobs.queue_deadlines)
        if settings.worker_metrics_port:
            vendors = [provider.name for provider in settings.enabled_providers]
            CIRCUIT_OPEN.read_from(lambda: runtime.run(runtime.breakers.states(vendors), timeout=SCRAPE_TIMEOUT))
            serve(settings.worker_metrics_port, settings.worker_metrics_host)
        freeze_startup_objects()

    def taken(request: Any, **_: Any) -> None:
        """This worker took a send job: its OTPs are not due (for the sweeper) before a run of it would have
        ended (a delivery lease and a sweep interval from now), so a job waiting for a pool thread is not
        taken for lost; a job whose run fails and whose retry the broker cannot take (Redis away) is due
        again soon after. Not waited for: the consumer goes on."""
        if request.name == SEND_TASK:
            otp_ids = [str(otp_id) for otp_id, _ in request.args[0]]
            until = time.time() + settings.delivery_lease + settings.sweep_interval
            current_runtime(settings).postpone(otp_ids, until)

    worker_ready.connect(warm_up, weak=False)
    task_received.connect(taken, weak=False)
    worker_process_shutdown.connect(_close_runtime, weak=False)
    worker_shutdown.connect(_close_runtime, weak=False)
    return app


def _close_runtime(**_: Any) -> None:
    close_runtime()
