"""Delivery receipts: what a vendor tells us, after it accepted a message, about the handset's outcome.

Each adapter parses its own vendor's receipts in its own file (``parse_receipt``) into one ``Receipt``;
this module holds the shapes they share and the callback address a vendor is given: the dispatcher's
public base URL (``OTP_CALLBACK_URL``) and ``/callbacks/<vendor>/<secret>``, the secret derived per vendor
from ``OTP_SECRET_KEY`` (so only the vendor we gave it to can mark a message delivered). A receipt never
keeps the number some vendors send with it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

CALLBACK_PREFIX = "/callbacks/"
"""The dispatcher's receipt routes: ``/callbacks/<vendor>/<secret>``."""
MAX_REFERENCE = 200
"""A vendor reference longer than this is not one we gave out (a receipt naming one is ignored)."""
MAX_REASON = 100


class ReceiptOutcome(StrEnum):
    """What a receipt says about the handset."""

    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    NONE = "NONE"
    """No evidence either way (yet): an intermediate or unknown status, kept for the record only."""


class BadReceipt(ValueError):
    """A receipt body we cannot read (no reference, not the vendor's format)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One receipt: the vendor's reference for the message, the outcome and the vendor's own status word."""

    reference: str
    outcome: ReceiptOutcome
    vendor_status: str
    reason: str | None = None
    """Why it was not delivered, in the vendor's words (``UNDELIVERED`` only)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A vendor accepted a message: the reference we keep for it, and the one its receipts will name (None: the
    vendor sends no receipts)."""

    reference: str
    receipt_reference: str | None


def callback_secret(secret_key: str, vendor: str) -> str:
    """The secret in the path of ``vendor``'s callback URL: derived from the dispatcher's secret key, one per
    vendor name, so no vendor can forge another's receipts."""
    return hmac.new(secret_key.encode(), b"receipts:" + vendor.encode(), hashlib.sha256).hexdigest()[:32]


def callback_url(base_url: str, secret_key: str, vendor: str) -> str:
    """Where ``vendor`` posts its receipts: ``<base_url>/callbacks/<vendor>/<secret>``."""
    return f"{base_url.rstrip('/')}{CALLBACK_PREFIX}{vendor}/{callback_secret(secret_key, vendor)}"


def clip(text: object, limit: int = MAX_REASON) -> str:
    """A vendor's word, as text of bounded length (never trusted to be short)."""
    return str(text)[:limit]
