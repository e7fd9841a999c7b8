"""Settings shared by every dispatcher process."""

from config.errors import ConfigError
from config.loading import load_settings
from config.policy import Limits, OtpPolicy, OtpType, code_strength_problem
from config.providers import ProviderKind, ProviderSettings
from config.redis import RedisEndpoint, RedisOptions, StoreRedisOptions
from config.settings import Settings
from config.workflows import Channel

__all__ = [
    "Channel",
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
