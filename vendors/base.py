"""The interface every vendor adapter implements."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from config import OtpType, ProviderSettings, code_strength_problem
from vendors.errors import OutcomeUnknown, ProviderError, TemporaryError
from vendors.receipts import Receipt, Sent
from vendors.spec import OtpSpec

_NOT_CONNECTED: tuple[type[Exception], ...] = (
    aiohttp.ClientConnectorError,  # refused, DNS, TLS handshake and certificate, proxy connection
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerFingerprintMismatch,  # the TLS peer is not the vendor: nothing was sent to it
    aiohttp.ClientHttpProxyError,  # the proxy refused to open the tunnel
)
_NOT_SENT: tuple[type[Exception], ...] = (
    aiohttp.ClientConnectionResetError,  # the connection closed while the request was being written
    aiohttp.UploadAbortedError,  # the body was not fully written
    aiohttp.InvalidURL,
    aiohttp.NonHttpUrlClientError,
)
_ANSWERED: tuple[type[Exception], ...] = (
    aiohttp.ClientResponseError,  # an answer aiohttp refused (too many redirects, ...)
    aiohttp.RedirectClientError,  # a redirect aiohttp cannot follow
)


def transport_failure(exc: BaseException, vendor: str, timeout: float) -> ProviderError:
    """The error kind of a vendor request that failed in transport (an aiohttp ``ClientError`` or a timeout).

    The rule is whether the request may have reached the vendor without its answer reaching us:

    - it never left (no connection, the TLS peer was not the vendor, the request was not fully written,
      a URL aiohttp refuses): ``TemporaryError``, nothing was sent;
    - it left and an answer came that aiohttp would not take (a redirect it cannot follow): ``TemporaryError``,
      the vendor answered, so nothing is unknown (as for a garbled body);
    - it left, or may have, and no answer came (a timeout, a disconnect or reset while waiting, a broken
      body, any other connection error): ``OutcomeUnknown``, the vendor may have sent a code.

    A transport failure never makes a vendor unavailable nor a request rejected: only an answer says so.
    """
    if isinstance(exc, _NOT_CONNECTED):
        return TemporaryError("CONNECT_FAILED", f"{vendor} could not be reached")
    if isinstance(exc, _NOT_SENT + _ANSWERED):
        return TemporaryError("TRANSPORT_ERROR", f"{vendor}: {type(exc).__name__}")
    return OutcomeUnknown("NO_ANSWER", f"{vendor} did not answer in {timeout}s")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a vendor can send exactly as an ``OtpSpec`` asks: a spec outside them is never handed to it."""

    channels: frozenset[str]
    otp_types: frozenset[OtpType]
    code_lengths: range
    content: bool
    """It sends the request's own message text (``content`` with ``{}``)."""
    templates: bool
    """It sends a message template by ``template_id`` (D7's templates, registered in D7's dashboard)."""

    def cannot_honour(self, spec: OtpSpec, *, vendor_text: bool) -> str | None:
        """Why a vendor with these capabilities cannot send ``spec`` as asked, or None when it can.

        ``vendor_text``: the operator lets this vendor send its own message in place of a content or a
        template it cannot send (``ProviderSettings.vendor_text``); the code is never degraded.
        """
        weakness = code_strength_problem(spec.code_length, spec.otp_type)
        if weakness:
            return f"code policy below the floor: {weakness}"
        if spec.channel not in self.channels:
            return f"no {spec.channel} channel"
        if spec.otp_type not in self.otp_types:
            return f"no {spec.otp_type} codes"
        if spec.code_length not in self.code_lengths:
            first, last = self.code_lengths[0], self.code_lengths[-1]
            return f"codes of {spec.code_length} characters (it sends {first} to {last})"
        if vendor_text:
            return None
        if spec.template_id is not None and not self.templates:
            return "no message templates"
        if spec.template_id is None and not self.content:
            return "no message text of the request's own"
        return None


ALL_TYPES: frozenset[OtpType] = frozenset({"numeric", "alpha", "alphanumeric"})


class Provider(ABC):
    """One vendor. Adapters build its requests and map every answer in one place, into ``errors``."""

    generates_codes: ClassVar[bool]
    """True when the vendor makes and checks the code itself (verification is forwarded to it)."""
    capabilities: ClassVar[Capabilities]
    """What it can send exactly as asked; the ``Deliverer`` passes over a vendor that cannot honour a spec."""
    receipts: ClassVar[bool] = False
    """True when the vendor calls our callback route with delivery receipts (``parse_receipt`` reads them);
    the attempts of a vendor without receipts are judged by the deadline alone."""
    polls: ClassVar[bool] = False
    """True when the vendor documents a status endpoint for a message (``poll`` reads it): at a workflow step's
    deadline, an attempt still without a receipt is polled once before the next step goes out."""

    def __init__(
        self, settings: ProviderSettings, session: aiohttp.ClientSession, callback_url: str | None = None
    ) -> None:
        self.settings = settings
        self.callback_url = callback_url
        """Where this vendor posts its receipts (None: the dispatcher has no public callback address)."""
        self.name = settings.name
        self.session = session
        self.base_url = str(settings.base_url).rstrip("/")

    @property
    def receipts_reach_us(self) -> bool:
        """Whether this vendor's receipts come to us: it sends them and has our callback address."""
        return self.receipts and self.callback_url is not None

    def cannot_honour(self, spec: OtpSpec) -> str | None:
        """Why this vendor cannot send ``spec`` exactly as asked (channel, code type and length, message), or
        None when it can. Never hand it a spec it cannot honour: it would send something weaker or else."""
        return self.capabilities.cannot_honour(spec, vendor_text=self.settings.vendor_text)

    @abstractmethod
    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        """Deliver a new code of the OTP ``otp_id``, valid for ``expiry`` more seconds; return the vendor's
        reference for it. ``code`` is given only to providers that do not generate codes themselves."""

    async def resend(self, reference: str, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        """Deliver again an OTP this vendor delivered before; return the (possibly new) reference."""
        return await self.send(spec, otp_id=otp_id, expiry=expiry, code=code)

    async def send_tracked(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> Sent:
        """``send``, with the reference the vendor's receipts will name (for most vendors the same one)."""
        reference = await self.send(spec, otp_id=otp_id, expiry=expiry, code=code)
        return Sent(reference, reference if self.receipts else None)

    async def resend_tracked(
        self, reference: str, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None
    ) -> Sent:
        """``resend``, with the reference the vendor's receipts will name."""
        new_reference = await self.resend(reference, spec, otp_id=otp_id, expiry=expiry, code=code)
        return Sent(new_reference, new_reference if self.receipts else None)

    @classmethod
    def parse_receipt(cls, body: bytes, content_type: str, query: Mapping[str, str]) -> Receipt:
        """One receipt as the vendor posts it to our callback route; ``BadReceipt`` if it is not one."""
        raise NotImplementedError(f"{cls.__name__} sends no receipts")

    async def check(self, reference: str, code: str) -> bool:
        """Ask the vendor whether ``code`` is right; only for vendors that generate codes."""
        raise NotImplementedError(f"{self.name} does not check codes")

    async def poll(self, reference: str, within: float) -> Receipt | None:
        """What the vendor's status endpoint says of the message its receipts name ``reference`` (None: it does
        not know it), within ``within`` seconds; only for vendors that ``poll``. A ``ProviderError`` if it
        cannot say."""
        raise NotImplementedError(f"{self.name} documents no status endpoint")

    async def call(self, method: str, path: str, *, within: float | None = None, **kwargs: Any) -> tuple[int, Any]:
        """One HTTP request to the vendor: its status and JSON body (None when the body is not JSON); ``within``
        (seconds) shortens the vendor's timeout.

        Transport failures are mapped here, once for every adapter, by ``transport_failure``.
        """
        limit = self.settings.timeout if within is None else min(within, self.settings.timeout)
        try:
            async with self.session.request(
                method, self.base_url + path, timeout=aiohttp.ClientTimeout(total=limit), **kwargs
            ) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_failure(exc, self.name, limit) from exc
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        return status, body
