"""What one OTP and one sender may do: the code policy's defaults (D7's), the floor on code strength, and the
abuse limits the guards enforce."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_EXPIRY = 600
DEFAULT_RESEND_DELAY = 60
DEFAULT_RESEND_COUNT = 5
DEFAULT_CODE_LENGTH = 6
DEFAULT_MAX_WRONG_ATTEMPTS = 5
DEFAULT_RECORD_GRACE = 900


OtpType = Literal["numeric", "alpha", "alphanumeric"]
CountryPrefix = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{0,5}$")]
"""An E.164 country prefix (``+33``, ``+91``)."""


class OtpPolicy(BaseModel):
    """Defaults for one OTP when the send request leaves a value out (D7's documented defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expiry: int = Field(DEFAULT_EXPIRY, ge=30, le=86_400)
    retry_delay: int = Field(DEFAULT_RESEND_DELAY, ge=0, le=86_400)
    retry_count: int = Field(DEFAULT_RESEND_COUNT, ge=0, le=100)
    otp_code_length: int = Field(DEFAULT_CODE_LENGTH, ge=4, le=12)
    otp_type: OtpType = "numeric"
    max_wrong_attempts: int = Field(DEFAULT_MAX_WRONG_ATTEMPTS, ge=1, le=100)
    record_grace: int = Field(DEFAULT_RECORD_GRACE, ge=0, le=86_400)

    @model_validator(mode="after")
    def _strong_codes(self) -> OtpPolicy:
        problem = code_strength_problem(self.otp_code_length, self.otp_type)
        if problem:
            raise ValueError(problem)
        return self


MIN_CODE_COMBINATIONS = 10**6
"""The weakest code accepted: six random digits, the 20 bits of entropy OWASP ASVS asks for."""
ALPHABET_SIZES: dict[str, int] = {"numeric": 10, "alpha": 26, "alphanumeric": 36}


def code_strength_problem(length: int, otp_type: str) -> str | None:
    """Why codes of this length and type are too weak to guess-proof, or None if they are strong enough."""
    if ALPHABET_SIZES[otp_type] ** length < MIN_CODE_COMBINATIONS:
        return f"{length} {otp_type} characters give fewer than 10^6 codes (20 bits); make codes longer"
    return None


class Limits(BaseModel):
    """Abuse limits, enforced atomically in Redis before anything is queued (429 with Retry-After)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient_sends: int = Field(5, ge=1)
    """Sends and resends to one number..."""
    recipient_window: int = Field(600, ge=1)
    """...per this many seconds."""
    token_per_second: int = Field(500, ge=1)
    token_per_day: int = Field(1_000_000, ge=1)
    ip_per_minute: int = Field(30_000, ge=1)
    countries: tuple[CountryPrefix, ...] = ()
    """E.164 prefixes numbers may have (``+33``, ``+44``); empty allows every country."""
    prefix_digits: int = Field(6, ge=2, le=12)
    """SMS-pumping guard: numbers sharing their first ``prefix_digits`` digits form one range..."""
    prefix_sends: int = Field(50, ge=1)
    prefix_window: int = Field(600, ge=1)
    """...that may receive ``prefix_sends`` per ``prefix_window`` seconds..."""
    prefix_block: int = Field(3600, ge=1)
    """...or is blocked for this many seconds."""
    premium_numbers: bool = False
    """Accept premium-rate and shared-cost numbers (refused by default: they bill the sender, a pumping vector)."""
    one_in_flight: bool = False
    """Refuse (409) a send to a number that already has an open OTP, like Vonage's concurrent rule."""
