"""The OTP record: its hash's fields, named once here, and the codec between the hash and what callers use.

One OTP is one hash (``otp:<id>``), one list of attempts (``otp:<id>:attempts``) and the receipts of its
attempts (``otp:<id>:receipts``, a hash by attempt index, merged into the report), all expiring a grace
period after the code does. The ``OtpSpec`` is sealed whole in one field (number, message and postback
URLs must never be read at rest); the rest is plain bookkeeping, with the copies of the spec's numbers the
Lua scripts enforce (resend rules, attempt budget) and the masked number, blinded number and number range
that reports and guards need. The code itself is never stored, only its keyed hash. Python code names the
fields as ``Field.STATUS``; Lua scripts as ``F.status`` (``scripts.py`` builds ``F`` from ``Field``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum, auto

from redis.typing import EncodableT

from config.settings import OTHER_COUNTRY
from dispatcher.schemas import (
    Attempt,
    AttemptOutcome,
    OtpReport,
    OtpStatus,
    ReceiptStatus,
    StepReport,
    WorkflowReport,
)
from dispatcher.sealing import Sealer
from vendors import OtpSpec
from vendors.phone import mask_number

FIRST_JOB = 1
"""The job number of an OTP's first send job."""


class Field(StrEnum):
    """The fields of an OTP record's hash (each one's name, lower-cased, is its name in Redis)."""

    STATUS = auto()
    SPEC = auto()
    """The ``OtpSpec``, sealed."""
    RECIPIENT_MASK = auto()
    RECIPIENT_INDEX = auto()
    """The number's keyed hash, for per-number limits."""
    PREFIX = auto()
    """The number's range (leading digits), for the SMS-pumping guard."""
    CREATED_AT = auto()
    EXPIRES_AT = auto()
    LAST_SEND_AT = auto()
    RESEND_DELAY = auto()
    RESEND_LIMIT = auto()
    RESEND_COUNT = auto()
    MAX_ATTEMPTS = auto()
    VERIFY_ATTEMPTS = auto()
    VERIFIED_AT = auto()
    SEND_SEQ = auto()
    """The current send: 1, and one more for each resend."""
    DELIVERED_SEQ = auto()
    """The latest send delivered (0: none yet)."""
    JOB_SEQ = auto()
    """The newest send job of the OTP; runs of older jobs do nothing."""
    RUNNING = auto()
    """1 while a run holds (or held, if it died) the lease."""
    CLAIMED_AS = auto()
    """What the claim of the run holding the lease answered (RUN, CRASHED): the same claim sent again gets it."""
    CRASHES = auto()
    ROUTE_FIRST = auto()
    """The vendor that delivered the previous send, tried first by this one."""
    CHAIN_POS = auto()
    ROUTING = auto()
    """The route a send decided at its first run, and why (``{"send": n, "route": [[vendor, reason], ...]}``, JSON):
    later runs of the same send walk it (empty, or of an older send: decide again)."""
    VENDOR_TRIES = auto()
    DELIVERED_BY = auto()
    VENDOR = auto()
    """The latest vendor that delivered a code it checks itself, and its reference for it (what a resend at that
    vendor names)."""
    REFERENCE = auto()
    VENDOR_CODES = auto()
    """Every vendor that delivered a code it checks itself, with its reference for it, newest first (JSON
    ``[[vendor, reference], ...]``, at most ``MAX_VENDOR_CODES``): the vendors a code is checked with."""
    CODE_HASHES = auto()
    """The keyed hash of each code the dispatcher generated, newest first (comma-separated), each tagged with the
    attempt that carries it: ``<hash>@<send>@<vendor>`` (an untagged hash, from an older record, credits nobody)."""
    CONVERTED_BY = auto()
    """The index, in the attempt log, of the attempt whose code was approved (empty: none credited)."""
    COUNTRY = auto()
    """The number's country as metrics label it (a prefix of ``Settings.metrics_countries``, or ``other``)."""
    CHANNEL = auto()
    """The channel send-otp asked for (an attempt outside a workflow names none)."""
    FAILURE = auto()
    WRONG_CODES = auto()
    """Codes a vendor judged wrong, each a hash of its reference and the code's keyed hash (comma-separated; one
    per vendor asked, for one attempt spent), so the same wrong code again fails without another attempt or
    vendor call."""
    QUEUED_AT = auto()
    """When the newest job of the OTP was queued (or is due, for a retry): the sweeper's backlog rule."""
    POSTBACKS = auto()
    """The events a postback is owed for (``DELIVERED``, ``FAILED``: those the spec has a URL for)."""
    POSTBACK_TRIES = auto()
    WORKFLOW = auto()
    """The name of the workflow the OTP follows (empty: none configured, one step)."""
    WORKFLOW_CHANNELS = auto()
    """The channel of each of its steps, comma-separated (for the report)."""
    STEP = auto()
    """The workflow step of the current send (from 0)."""
    STEP_DEADLINE = auto()
    """When the current step gives way to the next one without a delivered receipt (0: no deadline running)."""
    STEP_DELIVERED = auto()
    """The latest send a delivered receipt confirmed (0: none)."""
    STEP_LOG = auto()
    """How each step before the current one ended: ``<send>/<step>/<reason>``, comma-separated."""
    RECEIPT_REF = auto()
    """The vendor that delivered the latest send and its name for the message in its receipts (``<vendor>
    <reference>``; empty: that vendor sends no receipts): what a step's deadline polls."""


@dataclass(frozen=True, slots=True)
class NewOtp:
    """An OTP just accepted: its spec and where its number counts against the guards' limits."""

    otp_id: str
    spec: OtpSpec
    recipient_index: str
    prefix: str
    created_at: float
    workflow: str = ""
    """The workflow it follows (``Settings.workflow_for``)."""
    channels: tuple[str, ...] = ()
    """The channel of each step of that workflow."""
    country: str = OTHER_COUNTRY
    """The number's country as metrics label it (``Settings.metrics_country``)."""


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What a worker needs to deliver the current send of one OTP."""

    otp_id: str
    spec: OtpSpec
    expires_at: float
    send_seq: int
    delivered_seq: int
    status: OtpStatus
    route_first: str
    chain_pos: int
    vendor_tries: int
    vendor: str
    reference: str
    workflow: str = ""
    step: int = 0
    country: str = OTHER_COUNTRY
    """The number's country as metrics label it."""
    routing: str = ""
    """The route decided by an earlier run of a send (``Field.ROUTING``)."""


def encode(otp: NewOtp, sealer: Sealer) -> dict[Field, EncodableT]:
    """The hash of an OTP awaiting its first send."""
    spec = otp.spec
    return {
        Field.STATUS: OtpStatus.OPEN.value,
        Field.SPEC: sealer.seal(spec.model_dump(mode="json")),
        Field.RECIPIENT_MASK: mask_number(spec.recipient),
        Field.RECIPIENT_INDEX: otp.recipient_index,
        Field.PREFIX: otp.prefix,
        Field.CREATED_AT: otp.created_at,
        Field.EXPIRES_AT: otp.created_at + spec.expiry,
        Field.LAST_SEND_AT: otp.created_at,
        Field.RESEND_DELAY: spec.resend_delay,
        Field.RESEND_LIMIT: spec.resend_limit,
        Field.RESEND_COUNT: 0,
        Field.MAX_ATTEMPTS: spec.max_wrong_attempts,
        Field.VERIFY_ATTEMPTS: 0,
        Field.SEND_SEQ: 1,
        Field.DELIVERED_SEQ: 0,
        Field.JOB_SEQ: FIRST_JOB,
        Field.RUNNING: 0,
        Field.CRASHES: 0,
        Field.ROUTE_FIRST: "",
        Field.CHAIN_POS: 0,
        Field.ROUTING: "",
        Field.VENDOR_TRIES: 0,
        Field.DELIVERED_BY: "",
        Field.VENDOR: "",
        Field.REFERENCE: "",
        Field.CODE_HASHES: "",
        Field.CONVERTED_BY: "",
        Field.COUNTRY: otp.country,
        Field.CHANNEL: spec.channel,
        Field.FAILURE: "",
        Field.WRONG_CODES: "",
        Field.QUEUED_AT: otp.created_at,
        Field.POSTBACKS: ",".join(
            event for event, url in (("DELIVERED", spec.success_url), ("FAILED", spec.failure_url)) if url
        ),
        Field.POSTBACK_TRIES: 0,
        Field.WORKFLOW: otp.workflow,
        Field.WORKFLOW_CHANNELS: ",".join(otp.channels),
        Field.STEP: 0,
        Field.STEP_DEADLINE: 0,
        Field.STEP_DELIVERED: 0,
        Field.STEP_LOG: "",
    }


def delivery_state(otp_id: str, record: Mapping[str, str], sealer: Sealer) -> DeliveryState:
    """The record as a worker delivers it, its spec unsealed."""
    return DeliveryState(
        otp_id=otp_id,
        spec=OtpSpec.model_validate(sealer.open(record[Field.SPEC])),
        expires_at=float(record[Field.EXPIRES_AT]),
        send_seq=int(record[Field.SEND_SEQ]),
        delivered_seq=int(record[Field.DELIVERED_SEQ]),
        status=OtpStatus(record[Field.STATUS]),
        route_first=record[Field.ROUTE_FIRST],
        chain_pos=int(record[Field.CHAIN_POS]),
        vendor_tries=int(record[Field.VENDOR_TRIES]),
        vendor=record[Field.VENDOR],
        reference=record[Field.REFERENCE],
        workflow=record.get(Field.WORKFLOW, ""),
        step=int(record.get(Field.STEP, 0)),
        country=record.get(Field.COUNTRY) or OTHER_COUNTRY,
        routing=record.get(Field.ROUTING, ""),
    )


def report(
    otp_id: str, record: Mapping[str, str], attempts: list[str], now: float, receipts: Mapping[str, str] | None = None
) -> OtpReport:
    """The record and its attempt log as the status endpoint shows them (the number masked), each attempt with
    the receipt recorded for it (``receipts``: by attempt index, as the receipt script writes them)."""
    expires_at = float(record[Field.EXPIRES_AT])
    logged = [with_receipt(item, (receipts or {}).get(str(index))) for index, item in enumerate(attempts)]
    converted_by = record.get(Field.CONVERTED_BY, "")
    return OtpReport(
        otp_id=otp_id,
        status=_status(record[Field.STATUS], expires_at, now),
        recipient=record[Field.RECIPIENT_MASK],
        created_at=_time(float(record[Field.CREATED_AT])),
        expires_at=_time(expires_at),
        expiry=max(0, int(expires_at - now)),
        resend_count=int(record[Field.RESEND_COUNT]),
        delivered_by=record[Field.DELIVERED_BY] or None,
        failure_reason=record[Field.FAILURE] or None,
        attempts=logged,
        converted_by=logged[int(converted_by)] if converted_by and int(converted_by) < len(logged) else None,
        workflow=_workflow(record, logged, now) if record.get(Field.WORKFLOW) else None,
    )


def _workflow(record: Mapping[str, str], attempts: list[Attempt], now: float) -> WorkflowReport:
    """Each send of the workflow so far: the step it was, its channel, the vendor that took it, its receipt, and
    how it ended (from the step log; the current send from the record)."""
    channels = record.get(Field.WORKFLOW_CHANNELS, "").split(",")
    ended = [entry.split("/") for entry in record.get(Field.STEP_LOG, "").split(",") if entry]
    sends = [(int(send), int(step), outcome) for send, step, outcome in ended]
    current_send, current_step = int(record[Field.SEND_SEQ]), int(record.get(Field.STEP, 0))
    sends.append((current_send, current_step, _current_outcome(record, current_send, now)))
    steps = []
    for send, step, outcome in sends:
        accepted = [a for a in attempts if a.send_number == send and a.outcome is AttemptOutcome.DELIVERED]
        taken = accepted[-1] if accepted else None
        channel = taken.channel if taken and taken.channel else (channels[step] if step < len(channels) else None)
        receipt = taken.receipt if taken else None
        if receipt is ReceiptStatus.DELIVERED and outcome == "AWAITING_RECEIPT":
            outcome = "DELIVERED"
        steps.append(
            StepReport(
                send_number=send,
                step=step,
                channel=channel,
                vendor=taken.vendor if taken else None,
                receipt=receipt,
                outcome=outcome,
            )
        )
    return WorkflowReport(
        name=record[Field.WORKFLOW],
        step=current_step,
        channel_change=len(set(channels)) > 1,
        channels=channels,
        steps=steps,
    )


def _current_outcome(record: Mapping[str, str], send: int, now: float) -> str:
    status = _status(record[Field.STATUS], float(record[Field.EXPIRES_AT]), now)
    if status is not OtpStatus.OPEN:
        return status.value
    if int(record.get(Field.STEP_DELIVERED, 0)) == send:
        return "DELIVERED"
    return "AWAITING_RECEIPT" if int(record[Field.DELIVERED_SEQ]) >= send else "SENDING"


def with_receipt(attempt: str, receipt: str | None) -> Attempt:
    """A logged attempt (its JSON) with the receipt recorded for it (as the receipt script wrote it), if any."""
    logged = Attempt.model_validate_json(attempt)
    if receipt is None:
        return logged
    held = json.loads(receipt)
    return logged.model_copy(
        update={
            "receipt": ReceiptStatus(held["receipt"]),
            "receipt_status": held.get("receipt_status"),
            "receipt_reason": held.get("receipt_reason"),
            "receipt_at": _time(float(held["at"])),
            "receipt_latency_ms": held.get("receipt_latency_ms"),
        }
    )


def _status(stored: str, expires_at: float, now: float) -> OtpStatus:
    status = OtpStatus(stored)
    if status is OtpStatus.OPEN and now >= expires_at:
        return OtpStatus.EXPIRED
    return status


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
