"""Configuration errors.

ConfigError: a setting is missing or invalid; its message is the one line printed at start-up.
"""


class ConfigError(Exception):
    """A setting is missing or invalid."""

    def __init__(self, where: str, problem: str, fix: str | None = None) -> None:
        self.where = where
        """What to fix: a variable (``OTP_REDIS_URL``) or the file and key (``otp.toml: providers[0].timeout``)."""
        super().__init__(f"configuration error: {where}: {problem}" + (f" ({fix})" if fix else ""))
