"""One OTP's message and code policy: what was asked for, with the dispatcher's defaults applied.

Built once when the OTP is accepted (``dispatcher.policy.otp_spec``), sealed whole in its record, opened
whole by the worker that delivers it and handed whole to the vendor adapter. A field D7 adds is added
here, where the request becomes a spec, and where an adapter uses it; nowhere else.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from config import Channel, OtpType

DEFAULT_CONTENT = "Your verification code is: {}"
"""The message of an OTP sent by template (for transport-only providers, which have no templates)."""


class OtpSpec(BaseModel):
    """The message and code policy of one OTP; the per-send values (code, time left) are not part of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipient: str
    originator: str
    content: str | None
    template_id: int | None
    channel: Channel
    """send-otp's channel; a later workflow step's spec carries that step's (``voice`` too)."""
    data_coding: str
    otp_type: OtpType
    code_length: int
    expiry: int
    """Seconds the code is valid for, from the first send (the time left at a send is the adapter's argument)."""
    resend_delay: int
    """The OTP's resend rules (D7's retry_delay and retry_count), for vendors that enforce their own."""
    resend_limit: int
    max_wrong_attempts: int
    success_url: str | None
    failure_url: str | None

    def text(self, code: str) -> str:
        """The message with ``code`` in place of ``{}`` (transport-only providers)."""
        content = self.content if self.content is not None else DEFAULT_CONTENT
        return content.replace("{}", code)
