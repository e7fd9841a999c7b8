"""Settings shared by every dispatcher process."""

from config.errors import ConfigError
from config.settings import (
    Limits,
    OtpPolicy,
    OtpType,
    ProviderKind,
    ProviderSettings,
    RedisEndpoint,
    RedisOptions,
    Settings,
    StoreRedisOptions,
    code_strength_problem,
    load_settings,
)

__all__ = [
    "ConfigError",
    "Limits",
    "OtpPolicy",
    "OtpType",
    "ProviderKind",
    "ProviderSettings",
    "RedisEndpoint",
    "RedisOptions",
    "Settings",
    "StoreRedisOptions",
    "code_strength_problem",
    "load_settings",
]
