"""Routing policies: how the vendors of a route are ordered for each send.

A route (``[route_policies]``, by E.164 prefix like ``[routes]``; ``default`` for numbers no prefix matches) follows
one policy:

- ``ordered``: the chain, with the route's vendors first (the behaviour before policies; the default);
- ``weighted``: the first vendor drawn by fixed ``weights``, the others following in chain order as fallbacks;
- ``adaptive``: the order follows a live score of each vendor for the number's country and the send's channel
  (Thompson sampling over the conversions and failures of a sliding window, ``[routing]``; see
  ``workers/sampler.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_ROUTE = "default"
"""The key of ``route_policies`` that numbers matching no prefix follow."""
DEFAULT_WINDOW = 600.0
DEFAULT_CONVERSION_WAIT = 60.0
DEFAULT_EXPLORATION = 0.05
DEFAULT_MIN_TRIALS = 10
DEFAULT_MAX_EVIDENCE = 20
DEFAULT_FLOOR_SHARE = 0.2
DEFAULT_REFRESH = 1.0

Policy = Literal["ordered", "weighted", "adaptive"]


class RoutePolicy(BaseModel):
    """How one route orders its vendors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Policy = "ordered"
    weights: dict[str, float] = {}
    """``weighted`` only: each vendor's share of first attempts (relative; a vendor left out gets none)."""

    @model_validator(mode="after")
    def _weights_fit(self) -> RoutePolicy:
        if self.policy == "weighted" and not any(weight > 0 for weight in self.weights.values()):
            raise ValueError("a weighted route needs weights, one at least above 0")
        if self.policy != "weighted" and self.weights:
            raise ValueError("weights are for a weighted route only")
        if any(weight < 0 for weight in self.weights.values()):
            raise ValueError("weights must not be negative")
        return self


DEFAULT_POLICY = RoutePolicy()
"""The policy of a route none is configured for: the chain's order."""


class RoutingSettings(BaseModel):
    """The adaptive policy's evidence and how it is sampled (shared by every adaptive route)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: float = Field(DEFAULT_WINDOW, ge=30, le=86_400)
    """Seconds of evidence a score holds (by the OTPs' creation time): older evidence is forgotten, so a vendor
    that recovers wins its traffic back within about a window."""
    conversion_wait: float = Field(DEFAULT_CONVERSION_WAIT, ge=1, le=3600)
    """Seconds after an OTP is created by which an attempt that has neither converted nor had an undelivered
    receipt counts as a failure (before then it is pending, and not counted)."""
    exploration: float = Field(DEFAULT_EXPLORATION, ge=0, le=1)
    """Share of sends whose first vendor is drawn at random among the route's vendors, whatever the scores."""
    max_evidence: int = Field(DEFAULT_MAX_EVIDENCE, ge=1, le=100_000)
    """Trials a posterior weighs at most (more are scaled down to this many, in proportion): no vendor's record is
    ever so sure that an equally good vendor with a short record (one that just recovered) cannot catch up within a
    few dozen sends. Higher tells closer vendors apart, and gives traffic back more slowly."""
    min_trials: int = Field(DEFAULT_MIN_TRIALS, ge=0, le=10_000)
    """A vendor with fewer attempts than this in the window is short of samples..."""
    floor_share: float = Field(DEFAULT_FLOOR_SHARE, ge=0, le=1)
    """...and leads up to this share of sends until it has them, in proportion to what it lacks."""
    refresh: float = Field(DEFAULT_REFRESH, gt=0, le=60)
    """Seconds between two reads of the scores and the operators' overrides by each worker process."""

    @model_validator(mode="after")
    def _wait_within_window(self) -> RoutingSettings:
        if self.conversion_wait >= self.window:
            raise ValueError("conversion_wait must stay below window (no evidence would be counted)")
        return self
