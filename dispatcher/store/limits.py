"""Send limits in Redis: counters a send is checked against and counted on, all or none, in one step
(``lua/shared/limits.lua``). The guards (``dispatcher/guards.py``) decide which counters and what they allow; a new
OTP's limits run in the step that records it (``ProducerOperations.create``), a resend's alone
(``ProducerOperations.count_send``).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.typing import EncodableT


@dataclass(frozen=True, slots=True)
class SendLimits:
    """The counters' keys (then the number range's block key) and the script's arguments for them."""

    keys: tuple[str, ...] = ()
    args: tuple[EncodableT, ...] = ()


NO_LIMITS = SendLimits()


class LimitReached(Exception):
    """A limit refused the send: nothing was counted or written. ``code`` names the limit (``REDIS_FULL`` when
    Redis is nearly full); ``retry_after``, the seconds until it lifts."""

    def __init__(self, code: str, retry_after: int) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after


def raise_if_refused(answer: list[EncodableT]) -> None:
    """Raise ``LimitReached`` unless the limits' answer is OK."""
    code, retry_after = answer
    if code != "OK":
        raise LimitReached(str(code), int(retry_after))
