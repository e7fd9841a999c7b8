"""The adaptive and weighted policies' draws: pure functions of the evidence and a random source.

Adaptive: Thompson sampling over Beta-Bernoulli posteriors. Each vendor's chance that a code it carries is typed is
unknown; with a uniform prior, after ``s`` conversions and ``f`` failures its posterior is Beta(1 + s, 1 + f). Each
send draws one value from each vendor's posterior and tries the vendors in the order of their draws. A vendor with
a clearly better record wins almost every draw; two vendors whose records overlap share the traffic in proportion
to how likely each is the better one, so the traffic follows the evidence with no tuning of thresholds, and a
vendor with little evidence (a wide posterior) still wins some draws and is sampled again.

Vendors change (a route degrades, then recovers), so old evidence must not weigh for ever: the store keeps a
sliding window, and a posterior weighs at most ``max_evidence`` trials (``s`` and ``f`` scaled down in proportion,
as a discounted Thompson sampling bounds its effective memory). Without that bound, a vendor with 300 perfect
trials would keep an equally perfect one with 15 at a 15 / 315 share: a vendor that recovered would never win its
traffic back. On top of that, so a vendor is never starved of the samples its score needs:

- exploration: a share of sends (``exploration``) lead with a vendor drawn uniformly at random;
- a floor: a vendor with fewer than ``min_trials`` attempts in the window leads ``floor_share`` of the sends until it
  has them (scores are read once a second, so a floor in samples rather than in share would send it a whole
  second of traffic at once).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from config.routing import RoutingSettings
from dispatcher.store import Evidence


class Draw(StrEnum):
    SCORES = "scores"
    """The order of the posterior draws."""
    EXPLORED = "explored"
    """The lead was drawn at random (exploration)."""
    FLOOR = "floor"
    """The lead is a vendor short of samples."""


@dataclass(frozen=True, slots=True)
class Ranked:
    """The vendors in the order to try them, each with its score (the draw from its posterior, or its weight's
    share), and how the lead was chosen."""

    vendors: tuple[str, ...]
    scores: tuple[float, ...]
    draw: Draw


def thompson(
    vendors: Sequence[str], evidence: Mapping[str, Evidence], settings: RoutingSettings, rng: random.Random
) -> Ranked:
    """The vendors ordered by one draw from each one's Beta(1 + successes, 1 + failures) (both scaled down to
    ``max_evidence`` trials at most); the lead replaced by a random vendor for an ``exploration`` share of sends, or
    by a vendor short of samples for ``floor_share``."""
    draws = {}
    for vendor in vendors:
        seen = evidence.get(vendor, Evidence())
        trials = seen.successes + seen.failures
        weight = min(1.0, settings.max_evidence / trials) if trials else 1.0
        draws[vendor] = rng.betavariate(1 + seen.successes * weight, 1 + seen.failures * weight)
    order = sorted(vendors, key=lambda vendor: -draws[vendor])
    how = Draw.SCORES
    starved = [vendor for vendor in vendors if evidence.get(vendor, Evidence()).sent < settings.min_trials]
    chance = rng.random()
    if len(vendors) > 1 and chance < settings.exploration:
        lead, how = rng.choice(list(vendors)), Draw.EXPLORED
    elif 0 < len(starved) < len(vendors) and chance < settings.exploration + settings.floor_share:
        lead, how = rng.choice(starved), Draw.FLOOR
    else:
        lead = order[0] if order else ""
    if lead:
        order.remove(lead)
        order.insert(0, lead)
    return Ranked(tuple(order), tuple(round(draws[vendor], 4) for vendor in order), how)


def weighted(vendors: Sequence[str], weights: Mapping[str, float], rng: random.Random) -> Ranked:
    """The first vendor drawn by ``weights`` (a vendor without one is never drawn first), the others after it in
    their order; each vendor's score is its share of the weights."""
    total = sum(weights.get(vendor, 0.0) for vendor in vendors)
    shares = {vendor: (weights.get(vendor, 0.0) / total if total else 0.0) for vendor in vendors}
    order = list(vendors)
    if total:
        lead = rng.choices(order, weights=[shares[vendor] for vendor in order])[0]
        order.remove(lead)
        order.insert(0, lead)
    return Ranked(tuple(order), tuple(round(shares[vendor], 4) for vendor in order), Draw.SCORES)
