"""Routing: which enabled vendors a send tries, in which order, and why.

``route`` and ``step_route`` give the configured order (the chain, a country route first; a workflow step's vendor
or group); ``decide`` applies the route's policy (``config/routing.py``: ordered, weighted, adaptive; the draws in
``workers/sampler.py``) and the operators' overrides, and says why each vendor is where it is (``RoutingReason``,
written in each attempt). A send decides once: its route is kept in the record (``decided`` reads it back), so a
retry or a run after a crash walks the same order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from config import ProviderSettings, Settings
from config.workflows import WorkflowStep
from dispatcher.schemas import Attempt, AttemptOutcome, ReceiptStatus, RoutingReason
from dispatcher.store import ANY_CHANNEL, Action, Evidence, Override, ScoreKey
from workers.sampler import Draw, thompson, weighted


def route(settings: Settings, recipient: str, first: str = "") -> tuple[ProviderSettings, ...]:
    """The enabled providers to try for ``recipient``, in order.

    ``first`` (the vendor that delivered the previous send) leads, then the providers of the longest
    matching route prefix, then the rest of the chain; vendors that do not serve the recipient's
    country are left out.
    """
    prefixes = [prefix for prefix in settings.routes if recipient.startswith(prefix)]
    preferred = settings.routes[max(prefixes, key=len)] if prefixes else ()
    leading = [name for name in (first, *preferred) if name]
    chain = [p for p in settings.enabled_providers if p.serves(recipient)]
    return tuple(sorted(chain, key=lambda p: leading.index(p.name) if p.name in leading else len(leading)))


def step_route(settings: Settings, recipient: str, first: str, step: WorkflowStep) -> tuple[ProviderSettings, ...]:
    """The enabled providers a workflow step tries for ``recipient``, in order: its vendor alone, its route
    group's vendors in the group's order, or (naming neither) the country route; never a vendor that does not
    serve the recipient's country."""
    if step.vendor is None and step.group is None:
        return route(settings, recipient, first)
    names = (step.vendor,) if step.vendor else settings.route_groups[step.group or ""]
    enabled = {provider.name: provider for provider in settings.enabled_providers if provider.serves(recipient)}
    return tuple(enabled[name] for name in names if name in enabled)


@dataclass(frozen=True, slots=True)
class Board:
    """What the routing of one worker process knows of the shared state: every vendor's evidence and the
    operators' overrides (``workers/scoreboard.py`` reads them about once a second)."""

    evidence: Mapping[ScoreKey, Evidence] = field(default_factory=dict)
    overrides: Sequence[Override] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """The vendors one send tries, in order, and why each is where it is."""

    vendors: tuple[ProviderSettings, ...]
    reasons: tuple[RoutingReason, ...]

    @property
    def fixed(self) -> bool:
        """The order follows from the configuration alone (no draw, no override): a later run finds it again."""
        return all(reason.policy in (ORDERED, STEP) and not (reason.pinned or reason.banned) for reason in self.reasons)

    def dumps(self, send_seq: int) -> str:
        """The route as ``Field.ROUTING`` keeps it."""
        pairs = zip(self.vendors, self.reasons, strict=True)
        route = [[vendor.name, reason.model_dump(mode="json")] for vendor, reason in pairs]
        return json.dumps({"send": send_seq, "route": route})


ORDERED, STEP = "ordered", "step"


def decide(
    settings: Settings,
    recipient: str,
    channel: str,
    first: str,
    step: WorkflowStep | None,
    board: Board,
    rng: random.Random,
    exclude: frozenset[str] = frozenset(),
    last: str = "",
) -> Route:
    """The route of one send: the vendors of the workflow step (when it names a vendor or a group) or of the country
    route ordered by the route's policy; then ``first`` leads (a resend's previous vendor, its send confirmed) or
    ``last`` goes last (its send unconfirmed), and an operator's pin leads before them. A vendor an operator banned
    for the number's country (and the channel) is never in it, nor one of ``exclude``. Each vendor comes with its
    ``RoutingReason``."""
    country = settings.metrics_country(recipient)
    held = [o for o in board.overrides if o.country == country and o.channel in (channel, ANY_CHANNEL)]
    banned = sorted({o.vendor for o in held if o.action is Action.BAN})
    pinned = next((o.vendor for o in held if o.action is Action.PIN and o.vendor not in banned), "")
    by_step = step is not None and (step.vendor is not None or step.group is not None)
    base = step_route(settings, recipient, "", step) if by_step and step else route(settings, recipient)
    vendors = [vendor for vendor in base if vendor.name not in banned and vendor.name not in exclude]
    names = [vendor.name for vendor in vendors]
    policy = STEP if by_step else settings.route_policy(recipient).policy
    scores: dict[str, float] = {}
    seen = {name: board.evidence.get((country, channel, name), Evidence()) for name in names}
    how = Draw.SCORES
    if policy == "weighted":
        ranked = weighted(names, settings.route_policy(recipient).weights, rng)
        names, scores = list(ranked.vendors), dict(zip(ranked.vendors, ranked.scores, strict=True))
    elif policy == "adaptive":
        ranked = thompson(names, seen, settings.routing, rng)
        names, scores, how = list(ranked.vendors), dict(zip(ranked.vendors, ranked.scores, strict=True)), ranked.draw
    if last in names and not by_step:
        names.remove(last)
        names.append(last)
    for leader in () if by_step else (first, pinned):
        if leader in names:
            names.remove(leader)
            names.insert(0, leader)
    ordered = sorted(vendors, key=lambda vendor: names.index(vendor.name))
    reasons = []
    for rank, name in enumerate(names, start=1):
        reason = RoutingReason(
            policy=policy,
            rank=rank,
            score=scores.get(name),
            successes=seen[name].successes if policy == "adaptive" else None,
            failures=seen[name].failures if policy == "adaptive" else None,
            explored=rank == 1 and how is not Draw.SCORES and name not in (first, pinned, last),
            pinned=name == pinned and not by_step,
            banned=banned,
            reason="",
        )
        reason.reason = _in_words(reason, name, first, how, last)
        reasons.append(reason)
    return Route(tuple(ordered), tuple(reasons))


def decided(settings: Settings, recipient: str, routing: str, send_seq: int) -> Route | None:
    """The route an earlier run of send ``send_seq`` decided (``Field.ROUTING``), its vendors as configured now; None
    when it decided none (or for another send)."""
    if not routing:
        return None
    kept = json.loads(routing)
    if kept.get("send") != send_seq:
        return None
    enabled = {provider.name: provider for provider in settings.enabled_providers if provider.serves(recipient)}
    pairs = [(enabled[name], RoutingReason.model_validate(reason)) for name, reason in kept["route"] if name in enabled]
    return Route(tuple(vendor for vendor, _ in pairs), tuple(reason for _, reason in pairs))


def unconfirmed(attempts: Sequence[Attempt], send_seq: int, channel: str, asked_channel: str) -> frozenset[str]:
    """The vendors whose latest send of the OTP before send ``send_seq`` on ``channel`` no delivered receipt confirmed
    (``asked_channel``: the channel of an attempt that names none)."""
    confirmed = {
        attempt.vendor: attempt.receipt is ReceiptStatus.DELIVERED
        for attempt in attempts
        if attempt.send_number < send_seq
        and attempt.outcome is AttemptOutcome.DELIVERED
        and (attempt.channel or asked_channel) == channel
    }
    return frozenset(vendor for vendor, delivered in confirmed.items() if not delivered)


def why_first(reason: RoutingReason, vendor: str, first: str) -> str:
    """Why the vendor that leads a route leads it, in one word (``otp_routing_decisions_total``'s ``why``)."""
    if reason.pinned:
        return "pinned"
    if vendor == first:
        return "previous"
    return "explored" if reason.explored else "ranked"


def _in_words(reason: RoutingReason, vendor: str, first: str, how: Draw, last: str) -> str:
    if reason.pinned:
        said = "pinned by an operator"
    elif vendor == first:
        said = "took the previous send"
    elif vendor == last and reason.policy != STEP:
        said = "took the previous send, no delivered receipt: tried last"
    elif reason.explored:
        said = "explored (a random vendor)" if how is Draw.EXPLORED else "short of samples (floor)"
    elif reason.policy == "adaptive":
        said = f"drew {reason.score:.3f} from its posterior ({reason.successes} converted, {reason.failures} failed)"
    elif reason.policy == "weighted":
        said = f"weight share {reason.score:.2f}" + ("" if reason.rank == 1 else ", as a fallback")
    elif reason.policy == STEP:
        said = "the workflow step's vendors"
    else:
        said = "the chain's order"
    banned = f"; banned: {', '.join(reason.banned)}" if reason.banned else ""
    return f"{reason.policy} #{reason.rank}: {said}{banned}"
