"""Both HTTP clients against the running stack: each call, and each documented refusal as its exception.

Every test runs twice, with ``AsyncOtpClient`` and with ``OtpClient`` (its calls made from a worker
thread, as code without an event loop makes them).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, Unpack

import pytest

from devtools.processes import free_port
from otp_dispatcher_client import (
    AsyncOtpClient,
    AttemptOutcome,
    InvalidRequest,
    OtpClient,
    OtpReport,
    OtpStatus,
    Problem,
    ReceiptStatus,
    ResendRefused,
    RouteFigures,
    RouteStatsReport,
    SendOptions,
    SentOtp,
    StatsWindow,
    Timeout,
    TransportError,
    Unauthorized,
    UnknownOtp,
    VerifyStatus,
)
from tests.support import Api, random_number, wait_for

UNKNOWN_ID = "3f0e1d2c-0000-4000-8000-000000000000"
CONTENT = "Your code is {}"
TIMEOUT = 10.0


class Client(Protocol):
    async def send(
        self,
        recipient: str,
        content: str | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SendOptions],
    ) -> SentOtp: ...

    async def resend(self, otp_id: str) -> SentOtp: ...
    async def verify(self, otp_id: str, code: str) -> VerifyStatus: ...
    async def report(self, otp_id: str) -> OtpReport: ...
    async def route_stats(self, window: StatsWindow = "hour") -> RouteStatsReport: ...


Connect = Callable[..., AbstractAsyncContextManager[Client]]


class InThread:
    """The blocking client, each call run in a worker thread."""

    def __init__(self, client: OtpClient) -> None:
        self._client = client

    async def send(
        self,
        recipient: str,
        content: str | None = None,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[SendOptions],
    ) -> SentOtp:
        return await asyncio.to_thread(
            self._client.send, recipient, content, idempotency_key=idempotency_key, **options
        )

    async def resend(self, otp_id: str) -> SentOtp:
        return await asyncio.to_thread(self._client.resend, otp_id)

    async def verify(self, otp_id: str, code: str) -> VerifyStatus:
        return await asyncio.to_thread(self._client.verify, otp_id, code)

    async def report(self, otp_id: str) -> OtpReport:
        return await asyncio.to_thread(self._client.report, otp_id)

    async def route_stats(self, window: StatsWindow = "hour") -> RouteStatsReport:
        return await asyncio.to_thread(self._client.route_stats, window)


@asynccontextmanager
async def async_client(base_url: str, token: str, seconds: float = TIMEOUT) -> AsyncIterator[Client]:
    async with AsyncOtpClient(base_url, token, timeout=seconds) as client:
        yield client


@asynccontextmanager
async def sync_client(base_url: str, token: str, seconds: float = TIMEOUT) -> AsyncIterator[Client]:
    with OtpClient(base_url, token, timeout=seconds) as client:
        yield InThread(client)


@pytest.fixture(params=[async_client, sync_client], ids=["async", "sync"])
def connect(request: pytest.FixtureRequest) -> Connect:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def client(connect: Connect, api: Api) -> AsyncIterator[Client]:
    async with connect(api.stack.api_url, api.stack.token) as connected:
        yield connected


@pytest.fixture
def silent_server() -> Iterator[str]:
    """The URL of a socket that takes connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


async def test_a_sent_otp_is_approved_with_the_code_the_phone_received(client: Client, api: Api) -> None:
    recipient = random_number()
    sent = await client.send(recipient, CONTENT, expiry=300)
    await api.delivered(sent.otp_id)

    status = await client.verify(sent.otp_id, (await api.inbox(recipient))["code"])

    assert (sent.status, sent.resend_count) == (OtpStatus.OPEN, 0)
    assert 0 < sent.expiry <= 300
    assert status is VerifyStatus.APPROVED


async def test_a_report_shows_the_vendor_and_every_attempt(client: Client, api: Api) -> None:
    sent = await client.send(random_number(), CONTENT)
    await api.delivered(sent.otp_id)

    report = await client.report(sent.otp_id)

    assert (report.otp_id, report.status, report.delivered_by) == (sent.otp_id, OtpStatus.OPEN, "d7")
    assert "*" in report.recipient
    assert report.created_at.tzinfo is not None
    assert report.created_at < report.expires_at
    assert [(a.send_number, a.vendor, a.outcome) for a in report.attempts] == [(1, "d7", AttemptOutcome.DELIVERED)]
    [attempt] = report.attempts
    assert attempt.routing is not None
    assert (attempt.routing.policy, attempt.routing.rank) == ("ordered", 1)
    assert attempt.routing.reason.startswith("ordered #1")


async def test_a_report_shows_the_receipt_and_once_verified_the_attempt_credited(client: Client, api: Api) -> None:
    # Given an OTP whose D7 attempt got its delivered receipt
    recipient = random_number()
    sent = await client.send(recipient, CONTENT)

    async def receipted() -> OtpReport | None:
        report = await client.report(sent.otp_id)
        return report if report.attempts and report.attempts[-1].receipt is ReceiptStatus.DELIVERED else None

    before = await wait_for(receipted)

    # When its code is verified
    assert await client.verify(sent.otp_id, (await api.inbox(recipient))["code"]) is VerifyStatus.APPROVED
    after = await client.report(sent.otp_id)

    # Then the report gave the receipt's time and latency, and now names the attempt credited
    [attempt] = before.attempts
    assert attempt.receipt_at is not None
    assert attempt.receipt_at >= attempt.started_at
    assert attempt.receipt_latency_ms is not None
    assert attempt.receipt_latency_ms >= 0
    assert (before.converted_by, after.status) == (None, OtpStatus.VERIFIED)
    assert after.converted_by is not None
    assert (after.converted_by.vendor, after.converted_by.send_number) == ("d7", 1)


async def test_a_resend_answers_the_same_otp_with_its_resend_count(client: Client, api: Api) -> None:
    sent = await client.send(random_number(), CONTENT, retry_delay=0)
    await api.delivered(sent.otp_id)

    resent = await client.resend(sent.otp_id)

    assert (resent.otp_id, resent.status, resent.resend_count) == (sent.otp_id, OtpStatus.OPEN, 1)


async def test_the_same_idempotency_key_answers_the_first_otp_again(client: Client) -> None:
    recipient, key = random_number(), secrets.token_hex(8)
    first = await client.send(recipient, CONTENT, idempotency_key=key)

    again = await client.send(recipient, CONTENT, idempotency_key=key)

    assert again.otp_id == first.otp_id


async def test_a_wrong_token_raises_unauthorized(connect: Connect, api: Api) -> None:
    async with connect(api.stack.api_url, "not-a-token") as client:
        with pytest.raises(Unauthorized) as refused:
            await client.send(random_number(), CONTENT)

    assert (refused.value.status, refused.value.code) == (401, "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED")


async def test_a_bad_number_raises_invalid_request_with_d7s_detail_items(client: Client) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await client.send("0612345678", CONTENT)

    assert (refused.value.status, refused.value.code) == (422, "VALIDATION_ERROR")
    assert [problem.loc for problem in refused.value.problems] == [("body", "recipient")]
    assert all(isinstance(problem, Problem) and problem.msg for problem in refused.value.problems)


async def test_a_report_of_an_unknown_otp_raises_unknown_otp(client: Client) -> None:
    with pytest.raises(UnknownOtp) as refused:
        await client.report(UNKNOWN_ID)

    assert (refused.value.status, refused.value.code) == (404, "MESSAGE_LOG_NOT_EXISTS")


async def test_a_resend_sooner_than_retry_delay_raises_resend_refused(client: Client) -> None:
    sent = await client.send(random_number(), CONTENT, retry_delay=60)

    with pytest.raises(ResendRefused) as refused:
        await client.resend(sent.otp_id)

    assert (refused.value.status, refused.value.code) == (400, "RESEND_TOO_SOON")
    assert refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 60


async def test_an_api_that_is_not_listening_raises_transport_error(connect: Connect) -> None:
    async with connect(f"http://127.0.0.1:{free_port()}", "token") as client:
        with pytest.raises(TransportError) as failed:
            await client.report(UNKNOWN_ID)

    assert (type(failed.value), failed.value.code, failed.value.status) == (TransportError, "CONNECTION_FAILED", None)


async def test_an_api_that_never_answers_raises_timeout_after_the_clients_timeout(
    connect: Connect, silent_server: str
) -> None:
    started = time.monotonic()
    async with connect(silent_server, "token", 0.2) as client:
        with pytest.raises(Timeout) as failed:
            await client.verify(UNKNOWN_ID, "123456")

    assert failed.value.code == "TIMEOUT"
    assert time.monotonic() - started < 2


async def test_route_stats_give_the_routes_figures_the_api_answers(client: Client, api: Api) -> None:
    # Given an OTP D7 took, once its delivered receipt came back
    sent = await client.send(random_number(), CONTENT)
    await wait_for(lambda: receipted(api, sent.otp_id))

    # When the day's stats are read through the client, between two reads straight from the API that agree (the
    # session's stack may still be counting an earlier test's receipt or expiry)
    async def read() -> tuple[RouteStatsReport, list[dict[str, object]]] | None:
        before = (await api.get("/stats/v1/routes?window=day"))[1]["routes"]
        stats = await client.route_stats("day")
        after = (await api.get("/stats/v1/routes?window=day"))[1]["routes"]
        return (stats, after) if before == after else None

    stats, routes = await wait_for(read)

    # Then the client gives every route with the API's figures, D7's French route among them
    assert stats.window == "day"
    assert stats.since < stats.until
    assert [{"vendor": r.vendor, "channel": r.channel, "country": r.country, **figures(r)} for r in stats.routes] == (
        routes
    )
    assert {(r.vendor, r.channel, r.country) for r in stats.routes if r.sends and r.delivered_receipts} >= {
        ("d7", "SMS", "+33")
    }


async def test_an_unknown_stats_window_raises_invalid_request(client: Client) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await client.route_stats("week")  # type: ignore[arg-type]

    assert [problem.loc for problem in refused.value.problems] == [("query", "window")]


async def receipted(api: Api, otp_id: str) -> bool | None:
    report = await api.report(otp_id)
    return True if [attempt["receipt"] for attempt in report["attempts"]] == ["DELIVERED"] else None


def figures(route: RouteFigures) -> dict[str, object]:
    """A route's figures as the API names them."""
    return {
        "sends": route.sends,
        "delivered_receipts": route.delivered_receipts,
        "undelivered_receipts": route.undelivered_receipts,
        "conversions": route.conversions,
        "conversion_rate": route.conversion_rate,
        "expired_unconverted": route.expired_unconverted,
        "median_verify_seconds": route.median_verify_seconds,
    }
