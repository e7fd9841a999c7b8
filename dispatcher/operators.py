"""What operators ask of the dispatcher besides OTPs: each route's figures (the stats route), and the routing
overrides (an operator's pins and bans), read and written in the OTP store."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from config import Settings
from config.settings import OTHER_COUNTRY
from dispatcher.errors import InvalidRequest, UnknownOverride
from dispatcher.schemas import (
    OverrideRequest,
    RouteFigures,
    RouteStatsReport,
    RoutingOverride,
    RoutingOverrides,
    StatsWindow,
)
from dispatcher.store import ANY_CHANNEL, Action, OtpStore, Override, RouteStats

log = logging.getLogger(__name__)

WINDOW_MINUTES: dict[StatsWindow, int] = {"hour": 60, "day": 24 * 60}
"""The minutes each window of the stats route sums, the current one included."""


class Operators:
    """The stats by route and the routing overrides, over the OTP store."""

    def __init__(self, settings: Settings, store: OtpStore) -> None:
        self._settings = settings
        self._store = store

    async def route_stats(self, window: StatsWindow) -> RouteStatsReport:
        """Each route's sends, receipts, conversions, expiries and median time to verify over ``window``."""
        now = time.time()
        minutes = WINDOW_MINUTES[window]
        routes = await self._store.route_stats(now, minutes)
        since = datetime.fromtimestamp((now // 60 - minutes + 1) * 60, tz=UTC)
        return RouteStatsReport(
            window=window, since=since, until=datetime.fromtimestamp(now, tz=UTC), routes=[_figures(r) for r in routes]
        )

    async def overrides(self) -> RoutingOverrides:
        """Every routing override in force."""
        held = await self._store.overrides()
        return RoutingOverrides(overrides=[_override_view(override) for override in held])

    async def set_override(self, country: str, vendor: str, request: OverrideRequest) -> RoutingOverride:
        """Pin or ban ``vendor`` for ``country`` (a country of ``metrics_countries``, or ``other``) and the request's
        channel (every channel when it names none); every worker honours it within ``routing.refresh`` seconds."""
        self._check_override(country, vendor)
        override = Override(country, request.channel or ANY_CHANNEL, vendor, Action(request.action))
        await self._store.set_override(override)
        log.info("routing override: %s %s for %s (%s)", override.action, vendor, country, override.channel)
        return _override_view(override)

    async def delete_override(self, country: str, vendor: str, channel: str | None) -> None:
        """Lift the override of ``vendor`` for ``country`` and ``channel`` (every channel's when None)."""
        self._check_override(country, vendor)
        if not await self._store.delete_override(country, channel or ANY_CHANNEL, vendor):
            raise UnknownOverride("No routing override is set for this country, channel and vendor.")
        log.info("routing override lifted: %s for %s (%s)", vendor, country, channel or ANY_CHANNEL)

    def _check_override(self, country: str, vendor: str) -> None:
        countries = (*self._settings.metrics_countries, OTHER_COUNTRY)
        if country not in countries:
            raise InvalidRequest.at(["path", "country"], f"must be one of OTP_METRICS_COUNTRIES or other: {countries}")
        if vendor not in {provider.name for provider in self._settings.providers}:
            raise InvalidRequest.at(["path", "vendor"], "no provider of this name is configured")


def _figures(stats: RouteStats) -> RouteFigures:
    route = stats.route
    return RouteFigures(
        vendor=route.vendor,
        channel=route.channel,
        country=route.country,
        sends=stats.sent,
        delivered_receipts=stats.delivered,
        undelivered_receipts=stats.undelivered,
        conversions=stats.converted,
        conversion_rate=stats.converted / stats.sent if stats.sent else None,
        expired_unconverted=stats.expired,
        median_verify_seconds=stats.median_verify_seconds,
    )


def _override_view(override: Override) -> RoutingOverride:
    return RoutingOverride(
        country=override.country, channel=override.channel, vendor=override.vendor, action=override.action.value
    )
