"""The sandbox vendor server: every vendor on one port (their paths do not collide), one shared inbox, one
network that carries their messages and sends their receipts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sandbox import control, d7, delivery, messagecentral, octopush
from sandbox.state import STATE, SandboxState

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class SandboxCredentials:
    """What the sandbox vendors accept; the dev stack and the tests configure providers with these."""

    d7_token: str = "sandbox-d7-token"  # noqa: S105 (a sandbox credential, public by design)
    octopush_login: str = "sandbox@example.com"
    octopush_key: str = "sandbox-octopush-key"
    messagecentral_customer_id: str = "C-SANDBOX"
    messagecentral_password: str = "sandbox-password"  # noqa: S105


def create_sandbox_app(credentials: SandboxCredentials | None = None) -> web.Application:
    credentials = credentials or SandboxCredentials()
    app = web.Application(middlewares=[d7.d7_auth], client_max_size=MAX_BODY_BYTES)
    app[STATE] = SandboxState()
    delivery.setup(app)
    app.add_routes(control.routes)
    d7.setup(app, credentials.d7_token)
    octopush.setup(app, credentials.octopush_login, credentials.octopush_key)
    messagecentral.setup(app, credentials.messagecentral_customer_id, credentials.messagecentral_password)
    return app
