"""The Celery tasks. A job carries only the otp_id; retries are scheduled here and nowhere else."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import Celery, Task

from config import Settings
from dispatcher.constants import SEND_QUEUE, SEND_TASK
from workers.runtime import current_runtime


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the dispatcher's tasks on ``app``."""

    @app.task(name=SEND_TASK, bind=True, max_retries=None, ignore_result=True, queue=SEND_QUEUE)
    def send_otp(self: Task, otp_id: str) -> None:
        """Deliver the current send of one OTP through the provider chain (safe to run twice)."""
        runtime = current_runtime(settings)
        later = runtime.run(runtime.deliverer.deliver(otp_id))
        if later is not None:
            expires = datetime.fromtimestamp(later.expires_at, tz=UTC)
            raise self.retry(countdown=later.countdown, expires=expires)
