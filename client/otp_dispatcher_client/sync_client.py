"""``OtpClient``: the same calls for code without an event loop, over the standard library.

It uses ``urllib.request`` rather than running the async client on a private event loop: it works in
any thread, including one whose event loop is already running (a sync view inside an async server),
and adds no dependency. Each call opens its own connection, so one client is safe to share between
threads and never holds a connection that went stale; code that sends many OTPs a second should use
``AsyncOtpClient``, which reuses connections. Proxy variables (``HTTP_PROXY``...) are ignored, as the
async client ignores them.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Self, TypeVar, Unpack

from otp_dispatcher_client import protocol
from otp_dispatcher_client.errors import Timeout, TransportError
from otp_dispatcher_client.models import OtpReport, RouteStatsReport, SendOptions, SentOtp, StatsWindow, VerifyStatus

_T = TypeVar("_T")


class OtpClient:
    """A blocking client of the dispatcher's API at ``base_url``, with one of its tokens.

    ``timeout`` bounds, in seconds, the connection and each wait for the answer's bytes.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = protocol.DEFAULT_TIMEOUT) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = protocol.headers(token)
        self._timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(
        self,
        recipient: str,
        content: str | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SendOptions],
    ) -> SentOtp:
        """Ask for an OTP to ``recipient`` (E.164); ``content`` has ``{}`` where the code goes.

        The same ``idempotency_key`` and fields within 24 hours answer the first answer again, and send nothing.
        """
        return self._call(protocol.send(recipient, content, options, idempotency_key))

    def resend(self, otp_id: str) -> SentOtp:
        """Send the OTP again (D7's ``retry_delay`` and ``retry_count`` apply, else ``ResendRefused``)."""
        return self._call(protocol.resend(otp_id))

    def verify(self, otp_id: str, code: str) -> VerifyStatus:
        """Check a code: ``APPROVED`` once, then ``ALREADY_VERIFIED``; ``FAILED`` for a wrong code or unknown id."""
        return self._call(protocol.verify(otp_id, code))

    def report(self, otp_id: str) -> OtpReport:
        """The OTP's status and every delivery attempt (``UnknownOtp`` once its record is gone)."""
        return self._call(protocol.report(otp_id))

    def route_stats(self, window: StatsWindow = "hour") -> RouteStatsReport:
        """Each route's (vendor, channel, country) sends, receipts, conversions, expiries and median time to verify
        over the last ``hour`` or ``day``."""
        return self._call(protocol.route_stats(window))

    def close(self) -> None:
        """Nothing to release (each call has its own connection); here so both clients close alike."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, call: protocol.Call[_T]) -> _T:
        url = self._base_url + call.path
        try:
            status, retry_after, body = self._exchange(call, url)
        except TimeoutError as exc:
            raise Timeout(f"no answer from {self._base_url} within {self._timeout} s", "TIMEOUT") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise Timeout(f"no answer from {self._base_url} within {self._timeout} s", "TIMEOUT") from exc
            raise TransportError(f"{call.method} {url} failed: {exc.reason}", "CONNECTION_FAILED") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: not a URL at all
            raise TransportError(f"{call.method} {url} failed: {exc}", "CONNECTION_FAILED") from exc
        return call.answer(status, retry_after, body)

    def _exchange(self, call: protocol.Call[_T], url: str) -> tuple[int, str | None, bytes]:
        """The answer's status, ``Retry-After`` and body, whatever the status."""
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked on the next line
            url, data=call.body, headers={**self._headers, **call.headers}, method=call.method
        )
        if request.type not in ("http", "https"):
            raise ValueError(f"{url} is not an http or https URL")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return response.status, response.headers.get("Retry-After"), response.read()
        except urllib.error.HTTPError as answer:  # an error status: the answer itself
            with answer:
                return answer.code, answer.headers.get("Retry-After"), answer.read()
