"""The Celery tasks. A job carries only the otp_id; retries are scheduled here and nowhere else."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from celery import Celery, Task

from config import Settings
from dispatcher.constants import SEND_QUEUE, SEND_TASK
from workers.runtime import current_runtime

ERROR_RETRY_DELAY = 5.0
"""Seconds before a run that failed unexpectedly (Redis blip, deadline passed) is tried again."""
MAX_RETRIES = 50
"""Upper bound on reruns of one job, far above what the chain's own retries need, so a job that
fails every time cannot loop forever."""

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the dispatcher's tasks on ``app``."""

    @app.task(name=SEND_TASK, bind=True, max_retries=MAX_RETRIES, ignore_result=True, queue=SEND_QUEUE)
    def send_otp(self: Task, otp_id: str) -> None:
        """Deliver the current send of one OTP through the provider chain (safe to run twice)."""
        runtime = current_runtime(settings)
        try:
            later = runtime.run(runtime.deliverer.deliver(otp_id))
        except Exception as exc:
            log.warning("otp %s: delivery run failed (%s); trying again", otp_id, type(exc).__name__)
            raise self.retry(countdown=ERROR_RETRY_DELAY, exc=exc) from exc
        if later is not None:
            expires = datetime.fromtimestamp(later.expires_at, tz=UTC)
            raise self.retry(countdown=later.countdown, expires=expires)
