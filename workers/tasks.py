"""The Celery tasks. Jobs carry only ids; retries are scheduled here and nowhere else.

A send job carries a batch of OTPs (the API coalesces the sends that arrive while it publishes), and
a worker delivers them concurrently on its process's event loop; a retry goes back on the queue as a
job of its own, for its one OTP.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from celery import Celery, Task

from config import Settings
from dispatcher.constants import POSTBACK_QUEUE, POSTBACK_TASK, SEND_QUEUE, SEND_TASK
from dispatcher.schemas import PostbackEvent, SendJob
from workers.delivery import Finished
from workers.metrics import FINISHED
from workers.runtime import current_runtime

ERROR_RETRY_DELAY = 5.0
"""Seconds before a run that failed unexpectedly (Redis blip, deadline passed) is tried again."""
MAX_RETRIES = 50
"""Upper bound on reruns of one send job, far above what the chain's own retries need, so a job
that fails every time cannot loop forever."""
POSTBACK_LIFETIME = 86_400
"""Seconds during which a postback the receiver did not take is tried again."""

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the dispatcher's tasks on ``app``."""
    longest_wait = min(3600.0, settings.visibility_timeout / 2)

    @app.task(name=SEND_TASK, bind=True, max_retries=MAX_RETRIES, ignore_result=True, queue=SEND_QUEUE)
    def send_otp(self: Task, jobs: list[list[str | int]]) -> None:
        """Deliver the current send of each OTP of the batch through the provider chain, concurrently
        (safe to run twice). ``jobs`` holds ``SendJob`` pairs: an otp_id and its job number."""
        runtime = current_runtime(settings)
        batch = [SendJob(str(otp_id), int(job_seq)) for otp_id, job_seq in jobs]
        try:
            outcomes = runtime.run(runtime.deliverer.deliver_all(batch))
        except Exception as exc:
            log.warning("delivery run of %d OTPs failed (%s); trying again", len(batch), type(exc).__name__)
            raise self.retry(countdown=ERROR_RETRY_DELAY, exc=exc) from exc
        failed = []
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("otp %s: delivery run failed (%s); trying again", job.otp_id, type(outcome).__name__)
                failed.append(job)
            elif isinstance(outcome, Finished):
                FINISHED.labels(outcome.event.value).inc()
                if outcome.postback:
                    send_postback.apply_async((job.otp_id, outcome.event.value, time.time()))
            elif outcome is not None:
                expires = datetime.fromtimestamp(outcome.expires_at, tz=UTC)
                send_otp.apply_async(([outcome.job],), countdown=outcome.countdown, expires=expires)
        if failed:
            raise self.retry(args=[failed], countdown=ERROR_RETRY_DELAY)

    @app.task(name=POSTBACK_TASK, bind=True, max_retries=None, ignore_result=True, queue=POSTBACK_QUEUE)
    def send_postback(self: Task, otp_id: str, event: str, first_try: float) -> None:
        """Tell the OTP's success_url or failure_url that its send is final; retried with backoff for 24 h."""
        runtime = current_runtime(settings)
        if runtime.run(runtime.postbacks.post(otp_id, PostbackEvent(event))):
            return
        if time.time() - first_try >= POSTBACK_LIFETIME:
            log.warning("otp %s: postback %s given up after 24 h", otp_id, event)
            return
        raise self.retry(countdown=min(longest_wait, settings.postback_retry_delay * 2**self.request.retries))
