"""The ``otp-dispatcher`` command, the composition root of every process (nothing imports it)."""

from cli.main import main

__all__ = ["main"]
