"""The Celery tasks, and ``schedule``: the one path by which a send job runs again.

A send job carries a batch of OTPs (the API coalesces the sends that arrive while it publishes), and
a worker delivers them concurrently on its process's event loop. Whatever makes an OTP's send run
again goes through ``schedule``, as a job of its own for that one OTP, due ``countdown`` seconds later
and expiring with the OTP: a vendor's temporary failure (``RetryLater`` from the ``Deliverer``), an OTP
another worker is busy with (also ``RetryLater``), a run that raised (a Redis blip). Publishing never
waits: a job the broker cannot take is left to the sweeper (``workers/sweeper.py``), which queues it
again from the OTP's due time in Redis once the broker takes jobs again; no pool thread waits or sleeps.

What Flower shows of a send task answers "what happened to OTP x?", with ids only (never a number or
a code). Its arguments are ``[[otp_id, job number], ...]`` whoever published it (``send_args``), so
searching Flower for an otp_id finds every task of that OTP. Its end tells the OTPs' fates (``Fate``):

- SUCCESS, the result a dict of otp_id to ``DELIVERED``, ``FAILED`` or ``NOTHING TO DO`` (a job run
  twice, an OTP resent or expired meanwhile);
- RETRY, when an OTP of the job runs again in a new job (``schedule``; that job is ours, not Celery's
  ``Task.retry``, which would republish the same job number and every OTP of the batch): the task
  raises ``OtpsRunAgain`` (a Celery ``Retry``), whose text gives every OTP's fate, each retry's delay,
  new job number and task id; Flower counts it as retried;
- FAILURE, when every OTP of the job failed for good (every vendor, a rejection, runs that kept
  failing): the task raises ``AllOtpsFailed`` once the bookkeeping is done (records, metrics,
  postbacks). The job is acknowledged all the same (``task_acks_on_failure_or_timeout``, Celery's
  default), never queued again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from celery import Celery, Task
from celery.exceptions import Retry
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from config import Settings
from dispatcher.constants import DEADLINE_TASK, POSTBACK_QUEUE, POSTBACK_TASK, SEND_QUEUE, SEND_TASK
from dispatcher.jobs import queue_lengths, send_args
from dispatcher.schemas import DeadlineJob, PostbackEvent, SendJob
from dispatcher.store import Lost, Overdue, StepKind
from workers.delivery import Finished, RetryLater
from workers.metrics import FINISHED, STEP_ADVANCES
from workers.runtime import current_runtime

MAX_ERROR_RERUNS = 50
"""Runs in a row that may raise for one OTP before its job is dropped, so a job that fails every time
cannot loop until its OTP expires (counted in Celery's ``retries`` header)."""
POSTBACK_LIFETIME = 86_400
"""Seconds a postback job lives in the broker (the record, which it needs, usually goes before)."""
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
"""One reconnection (a pooled connection Redis closed), never a wait: a job the broker refuses is swept."""
PUBLISH_ERRORS = (KombuError, RedisError, OSError)
"""What a publish raises when the broker cannot take the job."""

log = logging.getLogger(__name__)


class AllOtpsFailed(Exception):
    """Every OTP of the job failed for good: the task ends FAILURE."""


class OtpsRunAgain(Retry):  # type: ignore[misc]
    """An OTP of the job runs again in a new job: the task ends RETRY. Celery's ``Retry``, raised without
    ``Task.retry`` (the new jobs are ours), and shown by Flower as its repr: its message, not Celery's
    ``Retry(Retry(...), None, None)``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[type[OtpsRunAgain], tuple[str]]:
        return type(self), (self.message,)


class Ending(Enum):
    DONE = "done"
    """Delivered, or nothing to do."""
    FAILED = "failed"
    """Failed for good: every vendor, a rejection, or runs that kept failing (dropped)."""
    AGAIN = "again"
    """Runs again in a new job."""


@dataclass(frozen=True, slots=True)
class Fate:
    """What became of one OTP in a send job, as Flower shows it."""

    otp_id: str
    ending: Ending
    text: str


def conclude(fates: list[Fate]) -> dict[str, str]:
    """The send task's result, ``{otp_id: fate}``; or the exception that makes Flower show the task as
    retried (``OtpsRunAgain``: an OTP runs again) or failed (``AllOtpsFailed``)."""
    summary: dict[str, str] = {}
    for fate in fates:  # one OTP twice in a batch (a resend coalesced with its send): both fates
        summary[fate.otp_id] = f"{summary[fate.otp_id]}; {fate.text}" if fate.otp_id in summary else fate.text
    endings = {fate.ending for fate in fates}
    text = "; ".join(f"otp {otp_id}: {fate}" for otp_id, fate in summary.items())
    if Ending.AGAIN in endings:
        raise OtpsRunAgain(text)
    if endings == {Ending.FAILED}:
        raise AllOtpsFailed(text)
    return summary


class Jobs:
    """Publishes the dispatcher's jobs from a worker process (tasks, the sweeper)."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self._settings = settings

    def schedule(self, job: SendJob, countdown: float, expires_at: float, reruns: int = 0) -> str | None:
        """Run ``job`` again in ``countdown`` seconds, unless its OTP has expired by then: the one retry path
        of send jobs. ``reruns`` counts the runs in a row that raised. Returns the new task's id, if queued."""
        return self.publish(SEND_TASK, SEND_QUEUE, send_args([job]), time.time() + countdown, expires_at, reruns)

    def schedule_deadline(self, job: DeadlineJob, deadline_at: float, expires_at: float) -> None:
        """Run a workflow step's deadline job at ``deadline_at``, or a hop of it: a countdown never exceeds half
        the visibility timeout (a job held unacknowledged longer would be handed out again), so a longer
        deadline runs as hops, each of which finds the deadline still ahead and schedules the next."""
        due_at = min(deadline_at, time.time() + self._settings.visibility_timeout / 2)
        self.publish(DEADLINE_TASK, SEND_QUEUE, list(job), due_at, expires_at)

    def queue_deadlines(self, overdue: list[Overdue]) -> None:
        """Queue again the deadline jobs the sweeper found overdue."""
        for item in overdue:
            self.publish(DEADLINE_TASK, SEND_QUEUE, list(item.job), time.time(), item.expires_at)

    def queue_lost(self, lost: list[Lost]) -> None:
        """Queue again the jobs the sweeper found lost, in batches as the API publishes them."""
        batch = self._settings.job_batch
        for start in range(0, len(lost), batch):
            chunk = lost[start : start + batch]
            args = send_args(item.job for item in chunk)
            self.publish(SEND_TASK, SEND_QUEUE, args, time.time(), max(item.expires_at for item in chunk))

    def send_backlog(self) -> bool:
        """Whether send jobs wait in the broker's send queue; True when the broker does not answer (then a job
        may be waiting there: only those older than the visibility timeout are taken for lost)."""
        try:
            return queue_lengths(self._app)[SEND_QUEUE] > 0
        except PUBLISH_ERRORS as exc:
            log.info("sweeper: the broker does not say how many jobs wait (%s)", exc)
            return True

    def queue_postback(self, otp_id: str, event: PostbackEvent) -> None:
        now = time.time()
        self.publish(POSTBACK_TASK, POSTBACK_QUEUE, [otp_id, event.value], now, now + POSTBACK_LIFETIME)

    def publish(
        self, task: str, queue: str, args: list[Any], due_at: float, expires_at: float, retries: int = 0
    ) -> str | None:
        """Put a job on the broker, due at ``due_at`` (a Unix time) and dropped unrun after ``expires_at``;
        returns its task id. A job the broker cannot take is logged and left to the sweeper, which finds it
        due in Redis (None, as for a job not queued because it has expired)."""
        if expires_at <= time.time():
            log.info("%s%s: not queued, it has expired", task, args)
            return None
        wait = due_at - time.time()
        try:
            result = self._app.send_task(
                task,
                args=args,
                queue=queue,
                countdown=wait if wait > 0 else None,
                expires=datetime.fromtimestamp(expires_at, tz=UTC),
                retries=retries,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except PUBLISH_ERRORS as exc:
            log.warning("%s%s: the broker cannot take it (%s); the sweeper queues it once it can", task, args, exc)
            return None
        return str(result.id)


def register_tasks(app: Celery, settings: Settings, jobs: Jobs) -> None:
    """Define the dispatcher's tasks on ``app``."""

    @app.task(name=SEND_TASK, bind=True, ignore_result=True, queue=SEND_QUEUE, throws=(AllOtpsFailed,))
    def send_otp(self: Task, batch: list[list[str | int]]) -> dict[str, str]:
        """Deliver the current send of each OTP of the batch through the provider chain, concurrently
        (safe to run twice). ``batch`` holds ``SendJob`` pairs: an otp_id and its job number. Returns each
        OTP's fate, or raises for Flower to show the task retried or failed (``conclude``)."""
        runtime = current_runtime(settings)
        sends = [SendJob(str(otp_id), int(job_seq)) for otp_id, job_seq in batch]
        try:
            outcomes = runtime.run(runtime.deliverer.deliver_all(sends))
        except Exception as exc:
            outcomes = [exc] * len(sends)
        return conclude([settle(self, job, outcome) for job, outcome in zip(sends, outcomes, strict=True)])

    def settle(task: Task, job: SendJob, outcome: Finished | RetryLater | BaseException | None) -> Fate:
        """Do what ``outcome`` asks for (count it, queue its postback or its next job); what became of the OTP."""
        if isinstance(outcome, BaseException):
            return rerun(task, job, outcome)
        if isinstance(outcome, Finished):
            FINISHED.labels(outcome.event.value).inc()
            if outcome.postback:
                jobs.queue_postback(job.otp_id, outcome.event)
            if outcome.deadline is not None:
                jobs.schedule_deadline(outcome.deadline, outcome.deadline_at, outcome.expires_at)
            ending = Ending.DONE if outcome.event is PostbackEvent.DELIVERED else Ending.FAILED
            return Fate(job.otp_id, ending, outcome.event.value)
        if outcome is None:
            return Fate(job.otp_id, Ending.DONE, "NOTHING TO DO")
        task_id = jobs.schedule(outcome.job, outcome.countdown, outcome.expires_at)
        return Fate(job.otp_id, Ending.AGAIN, _again(outcome.countdown, outcome.job, task_id))

    def rerun(task: Task, job: SendJob, error: BaseException) -> Fate:
        reruns = int(task.request.retries or 0) + 1
        failed = f"RUN FAILED: {type(error).__name__}"
        if reruns > MAX_ERROR_RERUNS:
            log.error("otp %s: its delivery run failed %d times in a row (%r); dropped", job.otp_id, reruns, error)
            return Fate(job.otp_id, Ending.FAILED, f"{failed}, {reruns} runs in a row; dropped")
        log.warning("otp %s: delivery run failed (%s); trying again", job.otp_id, type(error).__name__)
        delay = settings.error_retry_delay
        task_id = jobs.schedule(job, delay, _expires_at(task, settings), reruns)
        return Fate(job.otp_id, Ending.AGAIN, f"{failed}; {_again(delay, job, task_id)}")

    @app.task(name=DEADLINE_TASK, ignore_result=True, queue=SEND_QUEUE)
    def step_deadline(otp_id: str, step: int, send_seq: int) -> None:
        """A workflow step's deadline: unless a delivered receipt, a verify, a newer step or a resend came first
        (checked with the step's state in one Redis script), the next step goes out as a new send job; an attempt
        with no receipt by then is polled first where its vendor has a status endpoint (``workers/polling.py``). Early
        (a hop of a long deadline), it schedules itself again. Safe to run twice: the second finds a newer step."""
        runtime = current_runtime(settings)
        workflow = settings.workflow(runtime.run(runtime.store.workflow_of(otp_id)) or "")
        job = DeadlineJob(otp_id, step, send_seq)
        reason, answer = runtime.run(runtime.deadlines.end_step(job, workflow.last_step))
        if answer.kind is StepKind.WAIT:
            jobs.schedule_deadline(job, answer.deadline_at, answer.expires_at)
        elif answer.kind is StepKind.ADVANCED:
            STEP_ADVANCES.labels(reason.value).inc()
            log.info("otp %s: step %d ended (%s); step %d goes out", otp_id, step, reason.value, answer.step)
            jobs.schedule(SendJob(otp_id, answer.job_seq), 0, answer.expires_at)

    @app.task(name=POSTBACK_TASK, ignore_result=True, queue=POSTBACK_QUEUE)
    def send_postback(otp_id: str, event: str) -> None:
        """Tell the OTP's success_url or failure_url that its send is final; a postback the receiver did not
        take is due again later (doubling delays), and the sweeper queues it then."""
        runtime = current_runtime(settings)
        runtime.run(runtime.postbacks.deliver(otp_id, PostbackEvent(event)))


def _again(countdown: float, job: SendJob, task_id: str | None) -> str:
    where = f"task {task_id}" if task_id else "not queued now: see the worker's log"
    return f"RETRY in {countdown:.2f} s as job {job.job_seq} ({where})"


def _expires_at(task: Task, settings: Settings) -> float:
    """When the job being run expires (its OTP's expiry; the latest of its batch), as a Unix time."""
    expires = task.request.expires
    if isinstance(expires, str):
        return datetime.fromisoformat(expires).timestamp()
    if isinstance(expires, datetime):
        return expires.timestamp()
    return time.time() + settings.policy.expiry  # a job published without an expiry (never by the dispatcher)
