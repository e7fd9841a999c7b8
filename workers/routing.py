"""Routing policy: which enabled vendors a send tries, in which order."""

from __future__ import annotations

from config import ProviderSettings, Settings
from config.workflows import WorkflowStep


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
