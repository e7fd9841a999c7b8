"""Points the sandbox's Octopush account at the dispatcher's receipt route (the dev stack, tests, bench).

Octopush takes its delivery receipts' callback URL per account, set in its dashboard; the sandbox's stand-in for
that page is ``PUT /_sandbox/callbacks/octopush``. D7 and the others take theirs with each send.
"""

from __future__ import annotations

import json
import urllib.request

from vendors.receipts import callback_url


def point_octopush_receipts(sandbox_url: str, api_url: str, secret_key: str) -> None:
    """Set the sandbox Octopush account's callback to the receipt route of the API at ``api_url``."""
    url = callback_url(api_url, secret_key, "octopush")
    request = urllib.request.Request(  # noqa: S310 (the sandbox's http URL on this machine)
        f"{sandbox_url}/_sandbox/callbacks/octopush",
        data=json.dumps({"url": url}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (the sandbox on this machine)
        pass
