"""OTPs in the states the store tests start from; time is passed in, so expiry needs no waiting."""

import time
import uuid
from datetime import UTC, datetime

from config import OtpPolicy
from dispatcher import codes
from dispatcher.policy import otp_spec
from dispatcher.schemas import Attempt, AttemptOutcome, SendOtpRequest, VerifyStatus
from dispatcher.store import NewOtp, OtpStore

KEY = codes.code_key("secret")
NOW = time.time()
SPEC = otp_spec(
    SendOtpRequest(recipient="+33612345678", content="Your code is {}", expiry=600, retry_delay=60, retry_count=2),
    OtpPolicy(max_wrong_attempts=3),
)


def attempt(vendor: str, send_number: int = 1) -> Attempt:
    return Attempt(
        send_number=send_number,
        vendor=vendor,
        started_at=datetime.now(tz=UTC),
        latency_ms=1.0,
        outcome=AttemptOutcome.DELIVERED,
    )


def new(**changes: object) -> NewOtp:
    """A new OTP of ``SPEC`` with ``changes`` to its spec, accepted at ``NOW``."""
    spec = SPEC.model_copy(update=changes)
    return NewOtp(
        otp_id=str(uuid.uuid4()), spec=spec, recipient_index="blinded-number", prefix="+336123", created_at=NOW
    )


async def new_otp(store: OtpStore, **changes: object) -> str:
    otp = new(**changes)
    await store.create(otp)
    return otp.otp_id


async def delivered_with_code(store: OtpStore, code: str = "123456", **changes: object) -> str:
    otp_id = await new_otp(store, **changes)
    await store.add_code_hash(otp_id, codes.digest(KEY, otp_id, code), 1, "console")
    await store.mark_delivered(otp_id, 1, "", attempt("console"))
    return otp_id


async def delivered_by_vendor(store: OtpStore, **changes: object) -> str:
    otp_id = await new_otp(store, **changes)
    await store.mark_delivered(otp_id, 1, "d7-ref", attempt("d7"))
    return otp_id


async def verify(store: OtpStore, otp_id: str, code: str, now: float = NOW) -> VerifyStatus:
    ticket = await store.verify(otp_id, codes.digest(KEY, otp_id, code), now)
    assert ticket.decided is not None
    return ticket.decided
