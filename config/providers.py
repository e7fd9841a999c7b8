"""One vendor of the provider chain, as configured: its kind, address, credentials, retries and breaker."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

from config.policy import CountryPrefix

DEFAULT_VENDOR_TIMEOUT = 5.0
DEFAULT_VENDOR_ATTEMPTS = 3
DEFAULT_VENDOR_RETRY_DELAY = 2.0
DEFAULT_VENDOR_RETRY_DELAY_MAX = 60.0
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_ERROR_RATE = 0.5
DEFAULT_BREAKER_WINDOW = 60.0
DEFAULT_BREAKER_MIN_CALLS = 10
DEFAULT_BREAKER_COOLDOWN = 30.0

ProviderKind = Literal["d7", "octopush", "messagecentral", "console"]


class ProviderSettings(BaseModel):
    """One vendor of the provider chain, tried in the order the chain lists them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    kind: ProviderKind
    base_url: AnyHttpUrl
    api_token: SecretStr = SecretStr("")
    """D7: the bearer token."""
    login: str = ""
    """Octopush: the api-login; Message Central: the customerId."""
    password: SecretStr = SecretStr("")
    """Octopush: the api-key; Message Central: the account password (sent base64-encoded)."""
    email: str = ""
    """Message Central: the account's email (optional)."""
    account_country: str = ""
    """Message Central: the ISO country code of the account (e.g. ``IN``)."""
    enabled: bool = True
    timeout: float = Field(DEFAULT_VENDOR_TIMEOUT, gt=0, le=60)
    attempts: int = Field(DEFAULT_VENDOR_ATTEMPTS, ge=1, le=20)
    retry_delay: float = Field(DEFAULT_VENDOR_RETRY_DELAY, ge=0, le=3600)
    retry_delay_max: float = Field(DEFAULT_VENDOR_RETRY_DELAY_MAX, ge=0, le=3600)
    countries: tuple[CountryPrefix, ...] = ()
    """E.164 prefixes this vendor serves (``+33``, ``+91``); empty means every country."""
    vendor_text: bool = False
    """True lets this vendor send its own message text in place of a request's ``content`` or ``template_id`` it
    cannot send (Message Central always sends its own text; Octopush and console have no D7 templates). False:
    such a request passes this vendor over. Channel and code policy are never relaxed."""
    breaker_failures: int = Field(DEFAULT_BREAKER_FAILURES, ge=1, le=1000)
    """Consecutive failures that open the circuit."""
    breaker_error_rate: float = Field(DEFAULT_BREAKER_ERROR_RATE, gt=0, le=1)
    """Share of failed calls within ``breaker_window`` that opens the circuit..."""
    breaker_min_calls: int = Field(DEFAULT_BREAKER_MIN_CALLS, ge=1)
    """...once the window holds at least this many calls."""
    breaker_window: float = Field(DEFAULT_BREAKER_WINDOW, gt=0, le=3600)
    breaker_cooldown: float = Field(DEFAULT_BREAKER_COOLDOWN, gt=0, le=3600)
    """Seconds an open circuit waits before letting one probe call through."""

    def serves(self, recipient: str) -> bool:
        return not self.countries or recipient.startswith(self.countries)

    @model_validator(mode="after")
    def _credentials_of_the_kind(self) -> ProviderSettings:
        if self.kind == "d7" and not self.api_token.get_secret_value():
            raise ValueError("a d7 provider needs api_token (D7's bearer token)")
        if self.kind in ("octopush", "messagecentral") and not (self.login and self.password.get_secret_value()):
            raise ValueError(f"a {self.kind} provider needs login and password")
        return self
