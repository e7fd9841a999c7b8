"""Routing policy: which enabled vendors a send tries, in which order."""

from __future__ import annotations

from config import ProviderSettings, Settings


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
