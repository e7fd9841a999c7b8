"""Settings shared by every dispatcher process."""

from config.errors import ConfigError
from config.settings import OtpPolicy, OtpType, ProviderKind, ProviderSettings, Settings, load_settings

__all__ = ["ConfigError", "OtpPolicy", "OtpType", "ProviderKind", "ProviderSettings", "Settings", "load_settings"]
