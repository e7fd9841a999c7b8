"""A circuit breaker per vendor, kept in Redis so every worker process shares it.

closed ──(K consecutive failures, or error rate over the window, or a vendor-unavailable answer)──▶ open
open ──(cool-down passed: exactly one caller gets through as the probe)──▶ half-open
half-open ──(probe succeeds)──▶ closed;  half-open ──(probe fails)──▶ open again

An open vendor is skipped without a network call. Rejections (the request was bad) count as the
vendor answering, so they close the circuit like successes do.

Each worker process keeps a copy of every breaker's state, synced at least every ``SYNC_INTERVAL``
seconds: while its copy says closed, a call needs no Redis round trip, and successes are counted
locally and sent with the next sync or failure (failures, trips and probes always go to Redis at
once). So a circuit another process opens is honoured here within ``SYNC_INTERVAL``. One sync at a
time: the runs that find the copy stale while a sync is under way trust the copy meanwhile (at the
peak, every run of a process found it stale at once, and each sent a sync of its own).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config import ProviderSettings
from dispatcher.constants import breaker_key

STATE_TTL = 86_400
"""Seconds a vendor's breaker state outlives its last call."""
SYNC_INTERVAL = 0.25
"""Seconds this process trusts its copy of a closed breaker."""

log = logging.getLogger(__name__)


class CallResult(StrEnum):
    """What one vendor call tells the breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    TRIP = "trip"
    """The vendor said it cannot serve (bad credentials, no credit): open at once."""
    NONE = "none"
    """No call to count: only the successes counted locally are sent (a sync)."""


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
local successes = tonumber(ARGV[8])
local f = redis.call('HMGET', KEYS[1], 'state', 'failures', 'window_start', 'calls', 'failed')
local state, failures = f[1] or 'closed', tonumber(f[2] or '0')
local start, calls, failed = tonumber(f[3] or '0'), tonumber(f[4] or '0'), tonumber(f[5] or '0')
if now - start >= window then start, calls, failed = now, 0, 0 end
if successes > 0 and state == 'closed' then calls, failures = calls + successes, 0 end
if outcome == 'none' then
  if successes > 0 then
    redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'window_start', start, 'calls', calls,
               'failed', failed)
    redis.call('EXPIRE', KEYS[1], ARGV[7])
  end
  return state
end
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


@dataclass(slots=True)
class _Copy:
    """This process's view of one breaker."""

    state: str = "closed"
    synced_at: float = -math.inf
    successes: int = 0
    """Successes counted here and not yet sent to Redis."""


class CircuitBreakers:
    """The breakers of every vendor, over one Redis connection pool."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)
        self._copies: dict[str, _Copy] = {}

    async def allow(self, vendor: ProviderSettings, now: float) -> bool:
        """Whether a call to ``vendor`` may go out now (after the cool-down, one probe only)."""
        copy = self._copies.setdefault(vendor.name, _Copy())
        if now - copy.synced_at >= SYNC_INTERVAL:
            copy.synced_at = now  # this run syncs; the others trust the copy until it has
            await self.record(vendor, CallResult.NONE, now)
        if copy.state == "closed":
            return True
        copy.synced_at = -math.inf  # the probe may change the state: look again next time
        return bool(await self._allow(keys=[breaker_key(vendor.name)], args=[now, vendor.breaker_cooldown]))

    async def record(self, vendor: ProviderSettings, outcome: CallResult, now: float) -> str:
        """Count one call's outcome; returns the breaker's state after it."""
        copy = self._copies.setdefault(vendor.name, _Copy())
        if outcome is CallResult.SUCCESS and copy.state == "closed":
            copy.successes += 1  # sent with the next sync (``allow``) or failure
            return copy.state
        successes, copy.successes = copy.successes, 0
        try:
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
                    successes,
                ],
            )
        except RedisError as exc:
            # A breaker is advice: it must not fail the run that has just delivered. Successes wait for
            # the next sync; a failure is not counted.
            copy.successes += successes
            log.warning("breaker of %s not updated, Redis is unavailable (%s)", vendor.name, type(exc).__name__)
            return copy.state
        copy.state, copy.synced_at = str(state), now
        return copy.state

    async def state(self, vendor: str) -> str:
        """``closed``, ``open`` or ``half_open``, as Redis holds it."""
        return str(await self._redis.hget(breaker_key(vendor), "state") or "closed")

    async def states(self, vendors: list[str]) -> dict[str, bool]:
        """Whether each vendor's circuit is open (or half-open), as Redis holds it now (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for vendor in vendors:
                pipe.hget(breaker_key(vendor), "state")
            states = await pipe.execute()
        return {vendor: (state or "closed") != "closed" for vendor, state in zip(vendors, states, strict=True)}

    async def next_call_at(self, vendor: ProviderSettings) -> float:
        """When a call to ``vendor`` may next go out: now while closed; the end of the cool-down while open;
        while half-open (a probe in flight), when the probe's own timeout ends, or the cool-down if sooner."""
        state, opened_at = await self._redis.hmget(breaker_key(vendor.name), ["state", "opened_at"])
        if state in (None, "closed") or opened_at is None:
            return 0.0
        wait = vendor.breaker_cooldown if state == "open" else min(vendor.breaker_cooldown, vendor.timeout)
        return float(opened_at) + wait
