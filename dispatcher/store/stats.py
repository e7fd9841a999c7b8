"""Outcome counters by route (vendor, channel and country), per minute, for the stats route.

The Lua step that records each event counts it in the same step (``lua/shared/stats.lua``): an attempt a vendor
accepted (``sent``), the first receipt with evidence for it (``delivered``, ``undelivered``), an approved verify
for the attempt credited (``converted``, with the whole seconds from the vendor's acceptance to the approval,
``verify_s:<seconds>``), and each accepted attempt of an OTP that expired unverified (``expired``, when the sweeper
takes it). A minute's counters are one hash, ``STATS_PREFIX<minute>``, kept ``STATS_KEEP`` seconds after that
minute ends; a window is read as the sum of its minutes, the current one included.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from dispatcher.constants import STATS_PREFIX
from dispatcher.store.connection import Connected, redis_errors

VERIFY_SECONDS = "verify_s:"
"""The outcome prefix of a conversion's time to verify, in whole seconds."""


@dataclass(frozen=True, slots=True)
class Route:
    """A vendor, the channel it sent on and the number's country (an E.164 prefix of the metrics list, or other)."""

    vendor: str
    channel: str
    country: str


@dataclass(slots=True)
class RouteStats:
    """One route's outcomes over a window."""

    route: Route
    sent: int = 0
    delivered: int = 0
    undelivered: int = 0
    converted: int = 0
    expired: int = 0
    verify_seconds: Counter[int] = field(default_factory=Counter)
    """Conversions by whole seconds from the vendor's acceptance to the approval."""

    @property
    def median_verify_seconds(self) -> float | None:
        """The median of the conversions' times to verify (whole seconds), None without conversions."""
        times = sorted(self.verify_seconds.elements())
        if not times:
            return None
        middle = len(times) // 2
        return float(times[middle]) if len(times) % 2 else (times[middle - 1] + times[middle]) / 2


class StatsOperations(Connected):
    """Reads the per-minute outcome counters the event scripts write."""

    async def route_stats(self, now: float, minutes: int) -> list[RouteStats]:
        """Every route with an outcome in the ``minutes`` minutes up to ``now`` (the current minute included),
        sorted by vendor, channel and country."""
        last = math.floor(now / 60)
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            for minute in range(last - minutes + 1, last + 1):
                pipe.hgetall(f"{STATS_PREFIX}{minute}")
            buckets: list[dict[str, str]] = await pipe.execute()
        routes: dict[Route, RouteStats] = {}
        for bucket in buckets:
            for name, count in bucket.items():
                vendor, channel, country, outcome = name.split("|", 3)
                route = Route(vendor, channel, country)
                stats = routes.setdefault(route, RouteStats(route))
                if outcome.startswith(VERIFY_SECONDS):
                    stats.verify_seconds[int(outcome.removeprefix(VERIFY_SECONDS))] += int(count)
                elif outcome in _COUNTS:
                    setattr(stats, outcome, getattr(stats, outcome) + int(count))
        return [routes[route] for route in sorted(routes, key=lambda r: (r.vendor, r.channel, r.country))]


_COUNTS = frozenset({"sent", "delivered", "undelivered", "converted", "expired"})
"""The outcomes counted as such (the names ``stats.lua`` writes, and ``RouteStats``' fields)."""
