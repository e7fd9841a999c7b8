"""``OtpStore``: every operation on OTP records, the producer's, verification's and the worker runs'."""

from __future__ import annotations

from dispatcher.store.producer import ProducerOperations
from dispatcher.store.runs import RunOperations
from dispatcher.store.verification import VerificationOperations


class OtpStore(ProducerOperations, VerificationOperations, RunOperations):
    """All OTP reads and writes over one Redis client. Redis failures surface as ``ServiceUnavailable``."""
