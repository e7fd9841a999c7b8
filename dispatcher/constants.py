"""Names shared across processes: task and queue names, Redis key prefixes. Defined here only."""

SEND_TASK = "otp.send"
SEND_QUEUE = "otp.send"

KEY_PREFIX = "otp:"
"""Every key the dispatcher writes starts with this; the broker's own keys do not."""


def record_key(otp_id: str) -> str:
    """The hash holding one OTP's state."""
    return f"{KEY_PREFIX}{otp_id}"


def attempts_key(otp_id: str) -> str:
    """The list of delivery attempts of one OTP, oldest first."""
    return f"{KEY_PREFIX}{otp_id}:attempts"


def lease_key(otp_id: str) -> str:
    """Held by the worker currently calling a vendor for this OTP."""
    return f"{KEY_PREFIX}{otp_id}:lease"


def breaker_key(vendor: str) -> str:
    """The circuit breaker of one vendor, shared by every worker."""
    return f"{KEY_PREFIX}breaker:{vendor}"
