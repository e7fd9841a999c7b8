"""OTP codes: generated with a CSPRNG, kept only as a keyed hash bound to their otp_id.

The constant-time comparison of hashes runs inside the store's verify script (``store/lua/verify.lua``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from config import OtpType

ALPHABETS: dict[OtpType, str] = {
    "numeric": string.digits,
    "alpha": string.ascii_uppercase,
    "alphanumeric": string.digits + string.ascii_uppercase,
}


def generate(length: int, otp_type: OtpType) -> str:
    """A fresh code of ``length`` characters drawn uniformly from the type's alphabet."""
    alphabet = ALPHABETS[otp_type]
    return "".join(secrets.choice(alphabet) for _ in range(length))


def normalise(code: str) -> str:
    """What the user typed, in the form codes are generated in (letters are upper case)."""
    return code.strip().upper()


def code_key(secret_key: str) -> bytes:
    """The HMAC key for codes, derived from the configured secret so it serves no other purpose."""
    return hashlib.sha256(b"otp-dispatcher/code-hash\x00" + secret_key.encode()).digest()


def digest(key: bytes, otp_id: str, code: str) -> str:
    """The keyed hash stored instead of the code; bound to ``otp_id`` so it verifies nothing else."""
    message = f"{otp_id}\x00{normalise(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
