"""Configuration errors.

ConfigError: a setting is missing or invalid; its message is the one line printed at start-up.
"""


class ConfigError(Exception):
    """A setting is missing or invalid."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        super().__init__(f"configuration error: {field} {problem} ({fix})")
