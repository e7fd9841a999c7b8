"""Sandbox vendor servers: faithful stand-ins for D7, Octopush and Message Central, for dev and tests."""

from sandbox.app import SandboxCredentials, create_sandbox_app

__all__ = ["SandboxCredentials", "create_sandbox_app"]
