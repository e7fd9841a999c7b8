"""The adaptive and weighted draws: pure functions, deterministic with a seeded random source."""

import random
from collections import Counter

import pytest

from config.routing import RoutingSettings
from dispatcher.store import Evidence
from workers.sampler import Draw, thompson, weighted

DRAWS = 4000
PURE = RoutingSettings(exploration=0, min_trials=0, max_evidence=100_000)
"""Thompson sampling alone: no exploration, no floor, no bound on the evidence weighed."""
GOOD = Evidence(successes=98, failures=2, sent=100)
BAD = Evidence(successes=70, failures=30, sent=100)


def leads(settings: RoutingSettings, evidence: dict[str, Evidence], seed: int = 7) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(thompson(["a", "b"], evidence, settings, rng).vendors[0] for _ in range(DRAWS))


def test_a_vendor_with_a_clearly_better_record_leads_almost_every_send() -> None:
    assert leads(PURE, {"a": BAD, "b": GOOD})["b"] >= 0.99 * DRAWS


def test_vendors_with_the_same_record_share_the_sends() -> None:
    shares = leads(PURE, {"a": GOOD, "b": GOOD})

    assert 0.45 * DRAWS <= shares["a"] <= 0.55 * DRAWS


def test_a_vendor_with_little_evidence_still_wins_some_draws() -> None:
    # 3 conversions out of 4: a wide posterior, which sometimes draws above a well-known 0.9 vendor
    shares = leads(PURE, {"a": Evidence(3, 1, 4), "b": Evidence(90, 10, 100)})

    assert 0.05 * DRAWS <= shares["a"] <= 0.4 * DRAWS


def test_the_draws_follow_the_beta_posterior_of_the_evidence() -> None:
    rng = random.Random(3)
    scores = [thompson(["a"], {"a": Evidence(6, 2, 8)}, PURE, rng).scores[0] for _ in range(DRAWS)]

    mean = sum(scores) / DRAWS
    variance = sum((score - mean) ** 2 for score in scores) / DRAWS
    # Beta(7, 3): mean 0.7, variance 7 * 3 / (10^2 * 11) = 0.0191
    assert mean == pytest.approx(0.7, abs=0.01)
    assert variance == pytest.approx(0.0191, abs=0.002)


def test_an_equally_good_vendor_with_a_short_record_gets_its_share_once_evidence_is_bounded() -> None:
    # b's long perfect record against a's short one (a vendor that just recovered)
    evidence = {"a": Evidence(15, 0, 15), "b": Evidence(300, 0, 300)}

    unbounded = leads(PURE, evidence)["a"]
    bounded = leads(RoutingSettings(exploration=0, min_trials=0, max_evidence=20), evidence)["a"]

    # Beta(16, 1) against Beta(301, 1): a leads 16 / 317 of the sends; against Beta(21, 1): 16 / 37
    assert unbounded == pytest.approx(16 / 317 * DRAWS, rel=0.2)
    assert bounded == pytest.approx(16 / 37 * DRAWS, rel=0.1)


def test_a_bounded_record_still_tells_a_vendor_that_drops_30_percent_from_one_that_delivers_all() -> None:
    settings = RoutingSettings(exploration=0, min_trials=0, max_evidence=20)

    assert leads(settings, {"a": BAD, "b": GOOD})["b"] >= 0.95 * DRAWS


def test_exploration_sends_a_share_to_a_random_vendor_and_says_so() -> None:
    settings = RoutingSettings(exploration=0.2, min_trials=0, max_evidence=100_000)
    rng = random.Random(11)

    ranked = [thompson(["a", "b"], {"a": BAD, "b": GOOD}, settings, rng) for _ in range(DRAWS)]

    explored = [draw for draw in ranked if draw.draw is Draw.EXPLORED]
    assert 0.17 * DRAWS <= len(explored) <= 0.23 * DRAWS
    assert 0.08 * DRAWS <= sum(draw.vendors[0] == "a" for draw in ranked) <= 0.12 * DRAWS
    assert all(draw.vendors[0] == "b" for draw in ranked if draw.draw is Draw.SCORES)


def test_a_vendor_short_of_samples_leads_its_floor_share_in_proportion_to_what_it_lacks() -> None:
    settings = RoutingSettings(exploration=0, min_trials=20, floor_share=0.2, max_evidence=100_000)

    none = leads(settings, {"a": Evidence(), "b": GOOD})["a"]
    three_quarters = leads(settings, {"a": Evidence(successes=1, failures=3, sent=5), "b": GOOD})["a"]
    fed = leads(settings, {"a": BAD, "b": GOOD})["a"]

    # nothing sent: the whole floor share (plus the draws a Beta(1, 1) wins against Beta(99, 3): about 1%)
    assert 0.18 * DRAWS <= none <= 0.23 * DRAWS
    assert 0.13 * DRAWS <= three_quarters <= 0.17 * DRAWS
    assert fed <= 0.01 * DRAWS


def test_no_floor_while_every_vendor_is_short_of_samples() -> None:
    settings = RoutingSettings(exploration=0, min_trials=20, floor_share=1.0)
    rng = random.Random(5)

    ranked = [thompson(["a", "b"], {}, settings, rng) for _ in range(200)]

    assert {draw.draw for draw in ranked} == {Draw.SCORES}


def test_the_same_seed_draws_the_same_order_and_scores() -> None:
    first = thompson(["a", "b", "c"], {"a": BAD, "b": GOOD}, RoutingSettings(), random.Random(42))
    again = thompson(["a", "b", "c"], {"a": BAD, "b": GOOD}, RoutingSettings(), random.Random(42))

    assert first == again
    assert sorted(first.vendors) == ["a", "b", "c"]
    assert list(first.scores) == sorted(first.scores, reverse=True) or first.draw is not Draw.SCORES


def test_weights_share_the_first_attempts_and_the_others_follow_in_order() -> None:
    rng = random.Random(9)

    ranked = [weighted(["a", "b", "c"], {"a": 3, "b": 1}, rng) for _ in range(DRAWS)]

    firsts = Counter(draw.vendors[0] for draw in ranked)
    assert 0.72 * DRAWS <= firsts["a"] <= 0.78 * DRAWS
    assert firsts["c"] == 0
    assert {draw.vendors for draw in ranked} == {("a", "b", "c"), ("b", "a", "c")}
    assert ranked[0].scores == ((0.75, 0.25, 0.0) if ranked[0].vendors[0] == "a" else (0.25, 0.75, 0.0))
