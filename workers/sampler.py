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
- a floor: a vendor with fewer than ``min_trials`` attempts in the window leads up to ``floor_share`` of the sends,
  in proportion to what it lacks (none: the full share; half: half of it), until it has them. A share, not a count:
  scores are read once a second, and a count would hand it a whole second of traffic; in proportion, so that the
  floor fades in as the vendor nears its samples rather than switching on and off.
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
    by a vendor short of samples for up to ``floor_share`` (in proportion to what it lacks)."""
    draws = {}
    for vendor in vendors:
        seen = evidence.get(vendor, Evidence())
        trials = seen.successes + seen.failures
        weight = min(1.0, settings.max_evidence / trials) if trials else 1.0
        draws[vendor] = rng.betavariate(1 + seen.successes * weight, 1 + seen.failures * weight)
    order = sorted(vendors, key=lambda vendor: -draws[vendor])
    how = Draw.SCORES
    lacking = {vendor: _lacking(evidence.get(vendor, Evidence()), settings.min_trials) for vendor in vendors}
    starved = [vendor for vendor in vendors if lacking[vendor] > 0]
    floor = settings.floor_share * max(lacking.values(), default=0.0)
    chance = rng.random()
    if len(vendors) > 1 and chance < settings.exploration:
        lead, how = rng.choice(list(vendors)), Draw.EXPLORED
    elif 0 < len(starved) < len(vendors) and chance < settings.exploration + floor:
        lead, how = rng.choices(starved, weights=[lacking[vendor] for vendor in starved])[0], Draw.FLOOR
    else:
        lead = order[0] if order else ""
    if lead:
        order.remove(lead)
        order.insert(0, lead)
    return Ranked(tuple(order), tuple(round(draws[vendor], 4) for vendor in order), how)


def _lacking(seen: Evidence, min_trials: int) -> float:
    """The share of ``min_trials`` a vendor's attempts in the window fall short of (0: none)."""
    return max(0.0, 1 - seen.sent / min_trials) if min_trials else 0.0


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
