"""Routing evidence and operators' overrides in Redis, shared by every worker: what the adaptive policy learns from.

Evidence is written where it is recorded, in the store's scripts (``lua/shared/attempt_score.lua``): an attempt a
vendor accepted (``mark_delivered``), an undelivered receipt (``apply_receipt``), a conversion (``credit``), each
counted for the attempt's vendor, the OTP's country and the attempt's channel, in buckets of OTP creation time.
Only OTPs the guards let through are recorded at all, and nothing counts while the number's range is blocked by
the pumping guard.

Feedback comes late: a code is typed seconds after it is sent, a silently dropped one never. So an attempt is a
trial only once its outcome is known: at once when it converted (success) or had an undelivered receipt
(failure); otherwise once its OTP is ``conversion_wait`` old (failure: a code not typed by then mostly never is; one
typed later still counts as a success, and takes its failure back). Attempts still pending count toward
``sent`` (so a vendor just given samples is not given more for lack of results) but not as trials. Buckets older
than the window are forgotten: a vendor that recovers wins its traffic back as its failures age out.

Overrides (``PIN``, ``BAN``) are one hash, by country, channel (``*``: every channel) and vendor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from dispatcher.constants import ROUTING_OVERRIDES_KEY, SCORE_BUCKET, SCORES_INDEX, SCORES_PREFIX
from dispatcher.store.connection import Connected, redis_errors

ANY_CHANNEL = "*"
"""The channel of an override that holds on every channel."""


class Action(StrEnum):
    PIN = "PIN"
    """The vendor leads every send of the country (and channel)."""
    BAN = "BAN"
    """The vendor is never tried for the country (and channel)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One vendor's record for one country and channel, over the window."""

    successes: int = 0
    failures: int = 0
    sent: int = 0
    """Attempts accepted in the window, those still pending included."""


ScoreKey = tuple[str, str, str]
"""(country, channel, vendor)."""


@dataclass(frozen=True, slots=True)
class Override:
    country: str
    channel: str
    """A channel, or ``ANY_CHANNEL``."""
    vendor: str
    action: Action


def tally(counts: Mapping[str, str], now: float, window: float, wait: float) -> Evidence:
    """The evidence of one hash of counts (``<bucket>:<kind>``) at ``now``: buckets within ``window``, each counted
    whole once its OTPs are ``wait`` old (failures: accepted and not converted), before then only what is known
    (conversions and undelivered receipts)."""
    by_bucket: dict[int, dict[str, int]] = {}
    for name, value in counts.items():
        start, _, kind = name.partition(":")
        by_bucket.setdefault(int(start), {})[kind] = int(value)
    successes = failures = sent = 0
    for bucket, kinds in by_bucket.items():
        if bucket + SCORE_BUCKET <= now - window:
            continue
        converted, accepted = kinds.get("c", 0), kinds.get("s", 0)
        successes += converted
        sent += accepted
        if bucket + SCORE_BUCKET <= now - wait:
            failures += max(0, accepted - converted)
        else:
            failures += kinds.get("u", 0)
    return Evidence(successes, failures, sent)


def stale_fields(counts: Mapping[str, str], now: float, window: float) -> list[str]:
    """The counts of buckets the window has left behind."""
    return [name for name in counts if int(name.partition(":")[0]) + SCORE_BUCKET <= now - window]


class RoutingOperations(Connected):
    """Reads the routing evidence; reads and writes the operators' overrides."""

    async def evidence(self, window: float, wait: float, now: float | None = None) -> dict[ScoreKey, Evidence]:
        """Every vendor's evidence, by country, channel and vendor (one pipelined read); the buckets the window has
        left behind are deleted on the way (whichever worker reads first)."""
        now = time.time() if now is None else now
        async with redis_errors():
            keys = sorted(cast("set[str]", await self._redis.smembers(SCORES_INDEX)))
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                hashes = cast("list[dict[str, str]]", await pipe.execute())
            found: dict[ScoreKey, Evidence] = {}
            gone: list[str] = []
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, counts in zip(keys, hashes, strict=True):
                    if not counts:
                        gone.append(key)
                        continue
                    country, channel, vendor = key.removeprefix(SCORES_PREFIX).rsplit(":", 2)
                    found[country, channel, vendor] = tally(counts, now, window, wait)
                    stale = stale_fields(counts, now, window)
                    if stale:
                        pipe.hdel(key, *stale)
                if gone:
                    pipe.srem(SCORES_INDEX, *gone)
                await pipe.execute()
        return found

    async def overrides(self) -> list[Override]:
        """Every override in force."""
        async with redis_errors():
            held = cast("dict[str, str]", await self._redis.hgetall(ROUTING_OVERRIDES_KEY))
        found = []
        for field, action in sorted(held.items()):
            country, channel, vendor = field.split("|")
            found.append(Override(country, channel, vendor, Action(action)))
        return found

    async def set_override(self, override: Override) -> None:
        """Pin or ban a vendor for a country and channel (replacing what was set for them)."""
        async with redis_errors():
            field = _field(override.country, override.channel, override.vendor)
            await self._redis.hset(ROUTING_OVERRIDES_KEY, field, override.action.value)

    async def delete_override(self, country: str, channel: str, vendor: str) -> bool:
        """Lift the override of a vendor for a country and channel; False when there was none."""
        async with redis_errors():
            removed = await self._redis.hdel(ROUTING_OVERRIDES_KEY, _field(country, channel, vendor))
        return bool(removed)


def _field(country: str, channel: str, vendor: str) -> str:
    return f"{country}|{channel}|{vendor}"
