"""Abuse guards on sends and resends, all atomic in Redis and all checked before anything is queued.

- send limits per number, per API token (per second and per day) and per client IP: 429 + Retry-After;
- the SMS-pumping guard: a country allowlist and no premium-rate numbers (403), and a velocity limit per
  number range (the first ``prefix_digits`` digits) that blocks the range for a cool-down when exceeded (429);
- optionally one open OTP per number (409 naming it);
- no new sends while Redis is nearly full (503): above ``MEMORY_CEILING`` of its ``maxmemory``, so the
  sends already accepted can still be delivered (with ``noeviction``, a full Redis refuses every write,
  the broker's bookkeeping included: a job a worker has just taken would be lost);
- idempotent sends: an Idempotency-Key replayed with the same body within 24 h gets the first answer
  and queues nothing; with another body, 422.

The guards decide which counters a send counts against and what each allows (``SendLimits``); the store checks
and counts them, taking back what a refused send counted before answering, in the step that records the OTP
(``lua/shared/limits.lua``), so a refused request uses no quota and costs one trip to Redis, not two.
Keys hold blinded numbers (keyed hashes) or number ranges, never a whole number.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.typing import EncodableT

from config import Limits
from dispatcher.constants import RECORD_PREFIX, idempotency_key, in_flight_key, limit_key, prefix_block_key
from dispatcher.errors import (
    Conflict,
    DispatcherError,
    IdempotencyKeyReused,
    NumberNotAllowed,
    RateLimited,
    ServiceUnavailable,
)
from dispatcher.sealing import Sealer
from dispatcher.store import LimitReached, SendLimits, record_script, redis_errors
from vendors import phone

IDEMPOTENCY_TTL = 86_400
MEMORY_CEILING = 0.9
"""Share of Redis's ``maxmemory`` above which sends are refused; Redis is asked at every send (a reading
kept even half a second let a burst of sends through past the limit)."""
IN_PROGRESS = ""
"""The remembered answer while the first request with a key is still being served."""

log = logging.getLogger(__name__)

_UNCOUNT = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
"""

_CLAIM_IN_FLIGHT = """
-- ARGV[4]: the prefix of record keys; F: the record's field names (store.record_script).
local current = redis.call('GET', KEYS[1])
if current then
  local f = redis.call('HMGET', ARGV[4] .. current, F.status, F.expires_at)
  if f[1] == 'OPEN' and tonumber(f[2]) > tonumber(ARGV[3]) then return current end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

_CLAIM_IDEMPOTENCY = """
local stored = redis.call('HMGET', KEYS[1], 'body', 'answer')
if not stored[1] then
  redis.call('HSET', KEYS[1], 'body', ARGV[1], 'answer', '')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'NEW'}
end
if stored[1] ~= ARGV[1] then return {'DIFFERENT'} end
return {'SAME', stored[2]}
"""

_MESSAGES = {
    "RECIPIENT_LIMIT_REACHED": "Too many OTPs were sent to this number; try again later.",
    "TOKEN_RATE_LIMITED": "Too many requests with this API token; slow down.",
    "IP_RATE_LIMITED": "Too many requests from this address; slow down.",
    "PREFIX_BLOCKED": "Sends to this number range are paused after unusual traffic (SMS-pumping guard).",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the API token (as a short hash) and the client address; None from the Python client."""

    token: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A number as the guards see it: its keyed hash and its range (leading digits), never the number."""

    index: str
    prefix: str


class Guards:
    def __init__(self, redis: aioredis.Redis, sealer: Sealer, limits: Limits) -> None:
        self._redis = redis
        self._sealer = sealer
        self._limits = limits
        self._uncount = redis.register_script(_UNCOUNT)
        self._claim_in_flight = record_script(redis, _CLAIM_IN_FLIGHT)
        self._claim_idempotency = redis.register_script(_CLAIM_IDEMPOTENCY)

    def recipient(self, number: str) -> Recipient:
        return Recipient(index=self._sealer.blind(number), prefix=number[: self._limits.prefix_digits + 1])

    def check_number(self, number: phone.Number) -> None:
        """``NumberNotAllowed`` for a country off the allowlist, or a premium-rate number unless allowed."""
        allowed = self._limits.countries
        if allowed and not number.e164.startswith(allowed):
            raise NumberNotAllowed("Sending to this country is not allowed by this dispatcher.")
        if number.premium and not self._limits.premium_numbers:
            raise NumberNotAllowed(
                "Premium-rate and shared-cost numbers are refused (they bill the sender: an SMS-pumping vector).",
                code="PREMIUM_NUMBER_NOT_ALLOWED",
            )

    def limits(self, recipient: Recipient, caller: Caller) -> SendLimits:
        """Every limit one send or resend to ``recipient`` by ``caller`` counts against, for the store to check and
        count (``OtpStore.create``, ``OtpStore.count_send``)."""
        counters = self._counters(recipient, caller)
        args: list[EncodableT] = [len(counters)]
        for _, limit, window, code in counters:
            args += [limit, window, code]
        args += [self._limits.prefix_block, MEMORY_CEILING]
        keys = [key for key, *_ in counters] + [prefix_block_key(recipient.prefix)]
        return SendLimits(tuple(keys), tuple(args))

    def refusal(self, reached: LimitReached, recipient: Recipient) -> DispatcherError:
        """What to answer a send a limit refused: ``RateLimited``, or ``ServiceUnavailable`` while Redis is nearly
        full; a number range the pumping guard blocks is logged."""
        if reached.code == "REDIS_FULL":
            return ServiceUnavailable("The OTP store (Redis) is nearly full; no new sends until it has room.")
        if reached.code == "PREFIX_BLOCKED":
            log.warning("pumping guard: range %s**** blocked (%ss left)", recipient.prefix, reached.retry_after)
        return RateLimited(_MESSAGES[reached.code], code=reached.code, retry_after=reached.retry_after)

    async def uncount_send(self, recipient: Recipient, caller: Caller) -> None:
        """Take back what ``OtpStore.count_send`` counted, for a request refused after it was counted (a resend
        that lost a race with another one): a refused request uses no quota."""
        async with redis_errors():
            await self._uncount(keys=[key for key, *_ in self._counters(recipient, caller)])

    def _counters(self, recipient: Recipient, caller: Caller) -> list[tuple[str, int, int, str]]:
        """Each counter a send counts against: its key, limit, window (seconds) and refusal code."""
        limits = self._limits
        counters = [
            (
                limit_key("recipient", recipient.index),
                limits.recipient_sends,
                limits.recipient_window,
                "RECIPIENT_LIMIT_REACHED",
            ),
            (limit_key("prefix", recipient.prefix), limits.prefix_sends, limits.prefix_window, "PREFIX_BLOCKED"),
        ]
        if caller.token is not None:
            counters.append((limit_key("token-s", caller.token), limits.token_per_second, 1, "TOKEN_RATE_LIMITED"))
            counters.append((limit_key("token-d", caller.token), limits.token_per_day, 86_400, "TOKEN_RATE_LIMITED"))
        if caller.ip is not None:
            counters.append((limit_key("ip", caller.ip), limits.ip_per_minute, 60, "IP_RATE_LIMITED"))
        return counters

    async def claim_in_flight(self, recipient: Recipient, otp_id: str, expiry: int, now: float) -> None:
        """With ``one_in_flight``, make ``otp_id`` the number's open OTP, or ``Conflict`` naming the open one."""
        if not self._limits.one_in_flight:
            return
        async with redis_errors():
            open_id = await self._claim_in_flight(
                keys=[in_flight_key(recipient.index)], args=[otp_id, expiry, now, RECORD_PREFIX]
            )
        if open_id:
            raise Conflict("An OTP is already open for this number.", code="OTP_IN_FLIGHT", otp_id=str(open_id))

    async def replay(self, caller: Caller, key: str, body: str) -> str | None:
        """The first answer to this Idempotency-Key, or None when this request is the first to use it."""
        async with redis_errors():
            state = await self._claim_idempotency(
                keys=[self._idempotency_key(caller, key)], args=[_digest(body), IDEMPOTENCY_TTL]
            )
        if state[0] == "DIFFERENT":
            raise IdempotencyKeyReused("This Idempotency-Key was used with a different body.")
        if state[0] == "NEW":
            return None
        if state[1] == IN_PROGRESS:
            raise Conflict("A request with this Idempotency-Key is still being processed.", code="REQUEST_IN_PROGRESS")
        return str(state[1])

    async def remember(self, caller: Caller, key: str, answer: str | None) -> None:
        """Keep the answer for replays; None forgets the key (the request failed, it may be retried)."""
        redis_key = self._idempotency_key(caller, key)
        async with redis_errors():
            if answer is None:
                await self._redis.delete(redis_key)
            else:
                await self._redis.hset(redis_key, "answer", answer)

    @staticmethod
    def _idempotency_key(caller: Caller, key: str) -> str:
        return idempotency_key(caller.token or "client", _digest(key))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]
