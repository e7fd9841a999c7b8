"""The Celery tasks. Jobs carry only ids; retries are scheduled here and nowhere else.

A send job carries a batch of OTPs (the API coalesces the sends that arrive while it publishes), and
a worker delivers them concurrently on its process's event loop; a retry goes back on the queue as a
job of its own, for its one OTP.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from config import Settings
from dispatcher.constants import POSTBACK_QUEUE, POSTBACK_TASK, SEND_QUEUE, SEND_TASK
from dispatcher.schemas import PostbackEvent, SendJob
from workers.delivery import Finished
from workers.metrics import FINISHED
from workers.runtime import Runtime, current_runtime

ERROR_RETRY_DELAY = 5.0
"""Seconds before a run that failed unexpectedly (Redis blip, deadline passed) is tried again."""
OUTAGE_RERUNS = 60
"""Reruns, ``ERROR_RETRY_DELAY`` apart, of failed runs inside the job itself while the broker cannot take
its retry (Redis down for both): about five minutes. Celery would otherwise drop the job."""
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
        again = run_batch(runtime, [SendJob(str(otp_id), int(job_seq)) for otp_id, job_seq in jobs])
        for _ in range(OUTAGE_RERUNS):
            if not again:
                return
            try:
                raise self.retry(args=[again], countdown=ERROR_RETRY_DELAY)
            except Reject:  # the broker could not take the retry: Redis is down for it too
                log.warning("broker unavailable; running the job again here in %.0f s", ERROR_RETRY_DELAY)
                time.sleep(ERROR_RETRY_DELAY)
                again = run_batch(runtime, again)
        if again:
            raise self.retry(args=[again], countdown=ERROR_RETRY_DELAY)

    def run_batch(runtime: Runtime, batch: list[SendJob]) -> list[SendJob]:
        """Deliver a batch; returns the jobs to run again (their run failed, or their retry could not be
        queued)."""
        try:
            outcomes = runtime.run(runtime.deliverer.deliver_all(batch))
        except Exception as exc:
            log.warning("delivery run of %d OTPs failed (%s); trying again", len(batch), type(exc).__name__)
            return batch
        again = []
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("otp %s: delivery run failed (%s); trying again", job.otp_id, type(outcome).__name__)
                again.append(job)
            elif isinstance(outcome, Finished):
                FINISHED.labels(outcome.event.value).inc()
                if outcome.postback:
                    queue(send_postback, (job.otp_id, outcome.event.value, time.time()))
            elif outcome is not None:
                expires = datetime.fromtimestamp(outcome.expires_at, tz=UTC)
                if not queue(send_otp, ([outcome.job],), countdown=outcome.countdown, expires=expires):
                    again.append(outcome.job)
        return again

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


def queue(task: Task, args: tuple[Any, ...], **options: Any) -> bool:
    """Publish a job from inside a task; False (logged) when the broker cannot take it."""
    try:
        task.apply_async(args, **options)
    except (KombuError, RedisError, OSError) as exc:
        log.warning("%s could not be queued (%s)", task.name, type(exc).__name__)
        return False
    return True
