"""What a vendor adapter raises; the task decides what to do with each kind.

ProviderError                 root of every vendor failure
├── TemporaryError            timeout, connection error, 429, 5xx: retry this vendor after a delay
│   └── OutcomeUnknown        the request left and no answer came: the vendor may have sent a code
├── VendorUnavailable         bad credentials, no credit, country not served: fail over at once
└── Rejected                  the request itself is invalid: fail the OTP, no retry, no failover
"""


class ProviderError(Exception):
    """A vendor call failed; ``code`` is the vendor's error code or our short name for the failure."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class TemporaryError(ProviderError):
    """The vendor may succeed if asked again later."""


class OutcomeUnknown(TemporaryError):
    """The request was sent but no answer came back; a code may reach the user."""


class VendorUnavailable(ProviderError):
    """This vendor cannot serve the request now; the next vendor should."""


class Rejected(ProviderError):
    """The request is invalid for any vendor."""
