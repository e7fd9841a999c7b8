"""The Celery tasks, and ``schedule``: the one path by which a send job runs again.

A send job carries a batch of OTPs (the API coalesces the sends that arrive while it publishes), and
a worker delivers them concurrently on its process's event loop. Whatever makes an OTP's send run
again goes through ``schedule``, as a job of its own for that one OTP, due ``countdown`` seconds later
and expiring with the OTP: a vendor's temporary failure (``RetryLater`` from the ``Deliverer``), an OTP
another worker is busy with (also ``RetryLater``), a run that raised (a Redis blip), a batch whose run
failed. Postbacks are published the same way (``publish``). A job the broker cannot take is kept by the
process's ``Outbox`` and published again from its event loop; no pool thread waits or sleeps.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

from celery import Celery, Task

from config import Settings
from dispatcher.constants import POSTBACK_QUEUE, POSTBACK_TASK, SEND_QUEUE, SEND_TASK
from dispatcher.schemas import PostbackEvent, SendJob
from workers.delivery import Finished
from workers.metrics import FINISHED
from workers.runtime import current_runtime

MAX_ERROR_RERUNS = 50
"""Runs in a row that may raise for one OTP before its job is dropped, so a job that fails every time
cannot loop until its OTP expires (counted in Celery's ``retries`` header)."""
POSTBACK_LIFETIME = 86_400
"""Seconds during which a postback the receiver did not take is tried again."""
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
"""One reconnection (a pooled connection Redis closed), never a wait: a job the broker refuses is kept."""

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the dispatcher's tasks on ``app``."""

    def publish(
        task: str, queue: str, args: tuple[Any, ...], due_at: float, expires_at: float, retries: int = 0
    ) -> None:
        """Put a job on the broker, due at ``due_at`` (a Unix time) and dropped unrun after ``expires_at``;
        kept by the process's outbox while the broker cannot take it."""
        what = f"{task}{list(args)}"
        if expires_at <= time.time():
            log.info("%s: not queued, it has expired", what)
            return
        send = partial(_send, app, task, queue, args, due_at, expires_at, retries)
        current_runtime(settings).outbox.publish(send, expires_at, what)

    def schedule(job: SendJob, countdown: float, expires_at: float, reruns: int = 0) -> None:
        """Run ``job`` again in ``countdown`` seconds, unless its OTP has expired by then: the one retry path
        of send jobs. ``reruns`` counts the runs in a row that raised.

        The due time is fixed here, once; a sweeper that republishes the OTPs whose due time has passed
        (so a job the broker lost still runs) would record it in the store here, before publishing."""
        publish(SEND_TASK, SEND_QUEUE, ([job],), time.time() + countdown, expires_at, reruns)

    @app.task(name=SEND_TASK, bind=True, ignore_result=True, queue=SEND_QUEUE)
    def send_otp(self: Task, jobs: list[list[str | int]]) -> None:
        """Deliver the current send of each OTP of the batch through the provider chain, concurrently
        (safe to run twice). ``jobs`` holds ``SendJob`` pairs: an otp_id and its job number."""
        runtime = current_runtime(settings)
        batch = [SendJob(str(otp_id), int(job_seq)) for otp_id, job_seq in jobs]
        try:
            outcomes = runtime.run(runtime.deliverer.deliver_all(batch))
        except Exception as exc:
            outcomes = [exc] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                rerun(self, job, outcome)
            elif isinstance(outcome, Finished):
                FINISHED.labels(outcome.event.value).inc()
                if outcome.postback:
                    now = time.time()
                    publish(
                        POSTBACK_TASK,
                        POSTBACK_QUEUE,
                        (job.otp_id, outcome.event.value, now),
                        now,
                        now + POSTBACK_LIFETIME,
                    )
            elif outcome is not None:
                schedule(outcome.job, outcome.countdown, outcome.expires_at)

    def rerun(task: Task, job: SendJob, error: BaseException) -> None:
        reruns = int(task.request.retries or 0) + 1
        if reruns > MAX_ERROR_RERUNS:
            log.error("otp %s: its delivery run failed %d times in a row (%r); dropped", job.otp_id, reruns, error)
            return
        log.warning("otp %s: delivery run failed (%s); trying again", job.otp_id, type(error).__name__)
        schedule(job, settings.error_retry_delay, _expires_at(task, settings), reruns)

    @app.task(name=POSTBACK_TASK, bind=True, ignore_result=True, queue=POSTBACK_QUEUE)
    def send_postback(self: Task, otp_id: str, event: str, first_try: float) -> None:
        """Tell the OTP's success_url or failure_url that its send is final; tried again with doubling delays
        (up to ``postback_retry_delay_max``) for 24 h."""
        runtime = current_runtime(settings)
        if runtime.run(runtime.postbacks.post(otp_id, PostbackEvent(event))):
            return
        tries = int(self.request.retries or 0)
        delay = min(settings.postback_retry_delay_max, settings.postback_retry_delay * 2 ** min(tries, 32))
        if time.time() + delay >= first_try + POSTBACK_LIFETIME:
            log.warning("otp %s: postback %s given up after 24 h", otp_id, event)
            return
        gives_up = first_try + POSTBACK_LIFETIME
        publish(POSTBACK_TASK, POSTBACK_QUEUE, (otp_id, event, first_try), time.time() + delay, gives_up, tries + 1)


def _send(
    app: Celery, task: str, queue: str, args: tuple[Any, ...], due_at: float, expires_at: float, retries: int
) -> None:
    """One publish of a job (one reconnection at most); raises what the broker raised."""
    wait = due_at - time.time()
    app.send_task(
        task,
        args=list(args),
        queue=queue,
        countdown=wait if wait > 0 else None,
        expires=datetime.fromtimestamp(expires_at, tz=UTC),
        retries=retries,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def _expires_at(task: Task, settings: Settings) -> float:
    """When the job being run expires (its OTP's expiry; the latest of its batch), as a Unix time."""
    expires = task.request.expires
    if isinstance(expires, str):
        return datetime.fromisoformat(expires).timestamp()
    if isinstance(expires, datetime):
        return expires.timestamp()
    return time.time() + settings.policy.expiry  # a job published without an expiry (never by the dispatcher)
