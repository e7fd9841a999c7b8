"""Encryption at rest for what an OTP record must keep but nobody may read: the number and the message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken


class Sealer:
    """Seals small JSON objects with a key derived from the configured secret (AES-128-CBC + HMAC, Fernet)."""

    def __init__(self, secret_key: str) -> None:
        derived = hashlib.sha256(b"otp-dispatcher/seal\x00" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._index_key = hashlib.sha256(b"otp-dispatcher/index\x00" + secret_key.encode()).digest()

    def blind(self, value: str) -> str:
        """A keyed hash of ``value`` to find records by it (rate limits per number) without storing it."""
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, value: dict[str, object]) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> dict[str, object]:
        """The sealed object; ``ValueError`` if it was sealed with another key or altered."""
        try:
            value = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("sealed value cannot be opened with this secret key") from exc
        if not isinstance(value, dict):
            raise ValueError("sealed value is not an object")
        return value
