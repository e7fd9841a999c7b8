"""A circuit breaker per vendor, kept in Redis so every worker process shares it.

closed ──(K consecutive failures, or error rate over the window, or a vendor-unavailable answer)──▶ open
open ──(cool-down passed: exactly one caller gets through as the probe)──▶ half-open
half-open ──(probe succeeds)──▶ closed;  half-open ──(probe fails)──▶ open again

An open vendor is skipped without a network call. Rejections (the request was bad) count as the
vendor answering, so they close the circuit like successes do.
"""

from __future__ import annotations

from enum import StrEnum

import redis.asyncio as aioredis

from config import ProviderSettings
from dispatcher.constants import breaker_key

STATE_TTL = 86_400
"""Seconds a vendor's breaker state outlives its last call."""


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TRIP = "trip"
    """The vendor said it cannot serve (bad credentials, no credit): open at once."""


_ALLOW = """
local f = redis.call('HMGET', KEYS[1], 'state', 'opened_at')
if not f[1] or f[1] == 'closed' then return 1 end
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
if now - tonumber(f[2]) < cooldown then return 0 end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'opened_at', ARGV[1])
return 1
"""

_RECORD = """
local now, outcome = tonumber(ARGV[1]), ARGV[2]
local limit, rate, window, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local f = redis.call('HMGET', KEYS[1], 'state', 'failures', 'window_start', 'calls', 'failed')
local state, failures = f[1] or 'closed', tonumber(f[2] or '0')
local start, calls, failed = tonumber(f[3] or '0'), tonumber(f[4] or '0'), tonumber(f[5] or '0')
if now - start >= window then start, calls, failed = now, 0, 0 end
calls = calls + 1
if outcome == 'success' then
  failures, state = 0, 'closed'
else
  failures, failed = failures + 1, failed + 1
  if outcome == 'trip' or state == 'half_open' or failures >= limit
     or (calls >= min_calls and failed / calls >= rate) then
    state, failures, start, calls, failed = 'open', 0, now, 0, 0
    redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
  end
end
redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'window_start', start, 'calls', calls,
           'failed', failed)
redis.call('EXPIRE', KEYS[1], ARGV[7])
return state
"""


class CircuitBreakers:
    """The breakers of every vendor, over one Redis connection pool."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)

    async def allow(self, vendor: ProviderSettings, now: float) -> bool:
        """Whether a call to ``vendor`` may go out now (after the cool-down, one probe only)."""
        return bool(await self._allow(keys=[breaker_key(vendor.name)], args=[now, vendor.breaker_cooldown]))

    async def record(self, vendor: ProviderSettings, outcome: Outcome, now: float) -> str:
        """Count one call's outcome; returns the breaker's state after it."""
        state = await self._record(
            keys=[breaker_key(vendor.name)],
            args=[
                now,
                outcome.value,
                vendor.breaker_failures,
                vendor.breaker_error_rate,
                vendor.breaker_window,
                vendor.breaker_min_calls,
                STATE_TTL,
            ],
        )
        return str(state)

    async def state(self, vendor: str) -> str:
        """``closed``, ``open`` or ``half_open``."""
        return str(await self._redis.hget(breaker_key(vendor), "state") or "closed")
