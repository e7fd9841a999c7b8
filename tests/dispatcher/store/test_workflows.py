"""Workflow steps on real Redis: when a step gives way to the next (deadline passed, undelivered receipt, no
vendor), when the workflow stops (delivered receipt, approved verify), and that each acts once."""

import uuid

import redis

from dispatcher import codes
from dispatcher.constants import DEADLINES_KEY
from dispatcher.schemas import StepEnd
from dispatcher.store import FIRST_JOB, NewOtp, OtpStore, StepKind
from tests.dispatcher.store.otps import KEY, NOW, SPEC, attempt, verify

LAST_STEP = 1
"""The workflow of these tests has two steps."""
DEADLINE = NOW + 3


async def stepping_otp(store: OtpStore, *, deadline_at: float = DEADLINE, code: str = "123456") -> str:
    """An OTP of a two-step workflow whose first step a vendor took at ``NOW``, its deadline at ``deadline_at``."""
    otp = NewOtp(str(uuid.uuid4()), SPEC, "blinded", "+336123", NOW, workflow="w", channels=("SMS", "SMS"))
    await store.create(otp)
    await store.add_code_hash(otp.otp_id, codes.digest(KEY, otp.otp_id, code), 1, "octopush")
    assert (await store.mark_delivered(otp.otp_id, 1, "", attempt("octopush"), deadline_at=deadline_at)).delivered
    return otp.otp_id


async def deadline(store: OtpStore, otp_id: str, now: float, send_seq: int = 1) -> StepKind:
    answer = await store.end_step(otp_id, StepEnd.DEADLINE, LAST_STEP, now, send_seq=send_seq)
    return answer.kind


async def test_a_step_whose_deadline_passed_without_a_receipt_gives_way_to_the_next_as_a_new_send(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given a first step a vendor took, with no receipt
    otp_id = await stepping_otp(store)

    # When its deadline job runs after the deadline
    answer = await store.end_step(otp_id, StepEnd.DEADLINE, LAST_STEP, DEADLINE + 0.1, send_seq=1)

    # Then step 1 goes out as send 2, with a new job, and no deadline runs until its vendor takes it
    assert answer.kind is StepKind.ADVANCED
    assert (answer.step, answer.job_seq) == (1, FIRST_JOB + 1)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq, state.chain_pos, state.vendor_tries) == (1, 2, 0, 0)
    assert redis_client.zscore(DEADLINES_KEY, otp_id) is None


async def test_a_deadline_job_that_runs_before_the_deadline_waits_for_it(store: OtpStore) -> None:
    # Given a first step whose deadline is ahead
    otp_id = await stepping_otp(store)

    # When its deadline job runs early (a hop of a long deadline)
    answer = await store.end_step(otp_id, StepEnd.DEADLINE, LAST_STEP, DEADLINE - 1, send_seq=1)

    # Then it is told when the deadline is, and the step stays
    assert (answer.kind, answer.deadline_at) == (StepKind.WAIT, DEADLINE)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (0, 1)


async def test_a_delivered_receipt_stops_the_workflow_and_the_deadline_then_does_nothing(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given a first step whose delivered receipt came
    otp_id = await stepping_otp(store)
    stopped = await store.end_step(otp_id, StepEnd.DELIVERED, LAST_STEP, NOW + 1, attempt=0)

    # When its deadline job runs after the deadline
    kind = await deadline(store, otp_id, DEADLINE + 1)

    # Then the workflow stopped at step 0: no new send
    assert (stopped.kind, kind) == (StepKind.STOPPED, StepKind.STOPPED)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (0, 1)
    assert redis_client.zscore(DEADLINES_KEY, otp_id) is None


async def test_an_approved_verify_stops_the_workflow(store: OtpStore) -> None:
    # Given a first step awaiting its receipt, whose code the user typed
    otp_id = await stepping_otp(store)
    assert (await verify(store, otp_id, "123456", NOW + 1)).value == "APPROVED"

    # When its deadline passes, and an undelivered receipt comes
    late = await deadline(store, otp_id, DEADLINE + 1)
    receipt = await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, DEADLINE + 1, attempt=0)

    # Then nothing more goes out
    assert (late, receipt.kind) == (StepKind.OVER, StepKind.OVER)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert state.send_seq == 1


async def test_an_undelivered_receipt_that_arrives_twice_advances_the_workflow_once(store: OtpStore) -> None:
    # Given a first step a vendor took
    otp_id = await stepping_otp(store)

    # When its undelivered receipt is acted on twice (before the deadline)
    first = await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1, attempt=0)
    second = await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1.1, attempt=0)

    # Then step 1 went out once
    assert (first.kind, second.kind) == (StepKind.ADVANCED, StepKind.STALE)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (1, 2)


async def test_a_late_deadline_job_of_an_earlier_step_does_nothing(store: OtpStore) -> None:
    # Given an OTP whose first step gave way to the second on an undelivered receipt
    otp_id = await stepping_otp(store)
    await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1, attempt=0)

    # When the first step's deadline job runs after its deadline
    kind = await deadline(store, otp_id, DEADLINE + 1, send_seq=1)

    # Then it finds a newer send and changes nothing
    assert kind is StepKind.STALE
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (1, 2)


async def test_the_last_step_gives_way_to_nothing(store: OtpStore) -> None:
    # Given an OTP on its last step, taken by a vendor
    otp_id = await stepping_otp(store)
    advanced = await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1, attempt=0)
    await store.mark_delivered(otp_id, 2, "", attempt("console", send_number=2))

    # When its undelivered receipt comes
    answer = await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 2, attempt=1)

    # Then no step follows
    assert (advanced.kind, answer.kind) == (StepKind.ADVANCED, StepKind.LAST)


async def test_the_sweep_queues_again_a_deadline_job_that_is_overdue_and_drops_a_stopped_one(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    # Given two steps past their deadline and the sweep's grace, one of them stopped by a delivered receipt
    waiting = await stepping_otp(store, code="111111")
    stopped = await stepping_otp(store, code="222222")
    await store.end_step(stopped, StepEnd.DELIVERED, LAST_STEP, NOW + 1, attempt=0)

    # When the sweeper looks
    overdue = await store.sweep_deadlines(DEADLINE + 60)

    # Then the waiting one's deadline job is queued again, due again a grace later; the stopped one is dropped
    jobs = [(item.job.otp_id, item.job.step, item.job.send_seq) for item in overdue]
    assert (waiting, 0, 1) in jobs
    assert stopped not in [otp_id for otp_id, _, _ in jobs]
    assert redis_client.zscore(DEADLINES_KEY, waiting) is not None
    assert redis_client.zscore(DEADLINES_KEY, stopped) is None


async def test_a_resend_starts_the_workflow_again_from_its_first_step(store: OtpStore) -> None:
    # Given an OTP on its second step
    otp_id = await stepping_otp(store)
    await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1, attempt=0)

    # When the user asks for a resend
    await store.resend(otp_id, NOW + 120)

    # Then send 3 is the first step again
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (0, 3)


async def test_a_resend_after_a_delivered_receipt_keeps_the_step_that_reached_the_phone(store: OtpStore) -> None:
    # Given an OTP whose second step's receipt said delivered
    otp_id = await stepping_otp(store)
    await store.end_step(otp_id, StepEnd.UNDELIVERED, LAST_STEP, NOW + 1, attempt=0)
    await store.mark_delivered(otp_id, 2, "", attempt("console", send_number=2))
    await store.end_step(otp_id, StepEnd.DELIVERED, LAST_STEP, NOW + 2, attempt=1)

    # When the user asks for a resend
    await store.resend(otp_id, NOW + 120)

    # Then it goes the same way (step 1)
    state = await store.delivery_state(otp_id)
    assert state is not None
    assert (state.step, state.send_seq) == (1, 3)
