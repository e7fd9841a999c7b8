"""``OtpStore``: every operation on OTP records, the producer's, verification's, the worker runs' and the
sweeper's, the receipts', the workflows', the stats', and the routing evidence and overrides."""

from __future__ import annotations

from dispatcher.store.producer import ProducerOperations
from dispatcher.store.receipts import ReceiptOperations
from dispatcher.store.runs import RunOperations
from dispatcher.store.scores import RoutingOperations
from dispatcher.store.stats import StatsOperations
from dispatcher.store.sweeps import SweepOperations
from dispatcher.store.verification import VerificationOperations
from dispatcher.store.workflows import WorkflowOperations


class OtpStore(
    ProducerOperations,
    VerificationOperations,
    RunOperations,
    SweepOperations,
    ReceiptOperations,
    WorkflowOperations,
    StatsOperations,
    RoutingOperations,
):
    """All OTP reads and writes over one Redis client. Redis failures surface as ``ServiceUnavailable``."""
