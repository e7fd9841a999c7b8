"""The OTP store in Redis: the record's layout and codec, the producer's operations, verification, and the
worker's delivery runs, each a module; every read-check-write is one Lua script of ``lua/``.
"""

from dispatcher.store.connection import MAX_REDIS_CONNECTIONS, Replicas, connect, connect_to, redis_errors
from dispatcher.store.limits import LimitReached, SendLimits
from dispatcher.store.otp_store import OtpStore
from dispatcher.store.producer import Resent
from dispatcher.store.receipts import EARLY_RECEIPT_TTL, ReceiptAnswer, ReceiptKind
from dispatcher.store.record import FIRST_JOB, DeliveryState, NewOtp
from dispatcher.store.runs import MAX_CRASHES, MAX_VENDOR_CODES, Claim, ClaimKind, Marked
from dispatcher.store.scores import ANY_CHANNEL, Action, Evidence, Override, ScoreKey
from dispatcher.store.scripts import record_script
from dispatcher.store.stats import Route, RouteStats
from dispatcher.store.sweeps import Lost
from dispatcher.store.verification import Conversion, VendorCheck, Verdict, VerifyTicket
from dispatcher.store.workflows import Overdue, StepAnswer, StepKind

__all__ = [
    "ANY_CHANNEL",
    "EARLY_RECEIPT_TTL",
    "FIRST_JOB",
    "MAX_CRASHES",
    "MAX_REDIS_CONNECTIONS",
    "MAX_VENDOR_CODES",
    "Action",
    "Claim",
    "ClaimKind",
    "Conversion",
    "DeliveryState",
    "Evidence",
    "LimitReached",
    "Lost",
    "Marked",
    "NewOtp",
    "OtpStore",
    "Overdue",
    "Override",
    "ReceiptAnswer",
    "ReceiptKind",
    "Replicas",
    "Resent",
    "Route",
    "RouteStats",
    "ScoreKey",
    "SendLimits",
    "StepAnswer",
    "StepKind",
    "VendorCheck",
    "Verdict",
    "VerifyTicket",
    "connect",
    "connect_to",
    "record_script",
    "redis_errors",
]
