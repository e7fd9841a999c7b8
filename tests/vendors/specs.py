"""The OTP the adapter tests send: a D7 send-otp request with every default applied."""

from vendors import OtpSpec

SPEC = OtpSpec(
    recipient="+33612345678",
    originator="Acme",
    content="Your code is {}",
    template_id=None,
    channel="SMS",
    data_coding="text",
    otp_type="numeric",
    code_length=6,
    expiry=600,
    resend_delay=60,
    resend_limit=5,
    max_wrong_attempts=5,
    success_url=None,
    failure_url=None,
)
