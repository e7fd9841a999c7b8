"""The Celery tasks. Jobs carry only ids; retries are scheduled here and nowhere else."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from celery import Celery, Task
from celery.exceptions import Reject

from config import Settings
from dispatcher.constants import POSTBACK_QUEUE, POSTBACK_TASK, SEND_QUEUE, SEND_TASK
from dispatcher.schemas import PostbackEvent
from workers.delivery import Finished
from workers.metrics import FINISHED
from workers.runtime import current_runtime

ERROR_RETRY_DELAY = 5.0
"""Seconds before a run that failed unexpectedly (Redis blip, deadline passed) is tried again."""
OUTAGE_RERUNS = 60
"""Reruns, ``ERROR_RETRY_DELAY`` apart, of a failed run inside the job itself while the broker cannot take
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
    def send_otp(self: Task, otp_id: str) -> None:
        """Deliver the current send of one OTP through the provider chain (safe to run twice)."""
        runtime = current_runtime(settings)
        for rerun in range(OUTAGE_RERUNS + 1):
            try:
                outcome = runtime.run(runtime.deliverer.deliver(otp_id))
                break
            except Exception as exc:
                log.warning("otp %s: delivery run failed (%s); trying again", otp_id, type(exc).__name__)
                try:
                    raise self.retry(countdown=ERROR_RETRY_DELAY, exc=exc) from exc
                except Reject:  # the broker could not take the retry: Redis is down for it too
                    if rerun == OUTAGE_RERUNS:
                        raise
                    log.warning(
                        "otp %s: broker unavailable; running the job again here in %.0f s", otp_id, ERROR_RETRY_DELAY
                    )
                    time.sleep(ERROR_RETRY_DELAY)
        if isinstance(outcome, Finished):
            FINISHED.labels(outcome.event.value).inc()
            if outcome.postback:
                send_postback.apply_async((otp_id, outcome.event.value, time.time()))
        elif outcome is not None:
            expires = datetime.fromtimestamp(outcome.expires_at, tz=UTC)
            raise self.retry(countdown=outcome.countdown, expires=expires)

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
