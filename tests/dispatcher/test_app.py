"""The app when its dependencies are down or missing: clear answers, fast."""

import math
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import ConfigError, Settings
from dispatcher.app import create_app
from tests.support import scrape

TOKEN = "token"


@pytest.fixture
async def api_without_redis() -> AsyncIterator[str]:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", api_tokens=TOKEN, secret_key="secret", redis_timeout=0.5)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


async def test_redis_down_answers_503_with_a_clear_body_within_two_seconds(api_without_redis: str) -> None:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            api_without_redis + "/verify/v1/otp/send-otp",
            json={"recipient": "+33612345678", "content": "code {}"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        body = await response.json()

    assert response.status == 503
    assert body["detail"]["code"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - started < 2


def test_the_app_refuses_to_start_without_api_tokens() -> None:
    with pytest.raises(ConfigError, match="OTP_API_TOKENS"):
        create_app(Settings(redis_url="redis://127.0.0.1:1/0", secret_key="secret"))


async def test_readiness_fails_with_503_while_redis_is_down(api_without_redis: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(api_without_redis + "/readyz") as response:
        assert response.status == 503


async def test_liveness_needs_no_redis_and_no_token(api_without_redis: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(api_without_redis + "/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_metrics_answer_while_redis_is_down_with_the_store_down_and_depths_unknown(
    api_without_redis: str,
) -> None:
    samples = await scrape(api_without_redis + "/metrics")

    assert samples[("otp_store_up", ())] == 0
    assert math.isnan(samples[("otp_queue_depth", (("queue", "otp.send"),))])
    assert math.isnan(samples[("otp_sends_pending", ())])


async def test_refused_requests_are_counted_by_route_pattern_and_status(api_without_redis: str) -> None:
    refused = (
        "otp_http_requests_total",
        (("method", "GET"), ("route", "/verify/v1/report/{otp_id}"), ("status", "401")),
    )
    before = (await scrape(api_without_redis + "/metrics")).get(refused, 0)

    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(api_without_redis + "/verify/v1/report/3f0e1d2c-0000-4000-8000-000000000000"):
                pass
    after = await scrape(api_without_redis + "/metrics")

    assert after[refused] == before + 3
    assert not any("3f0e1d2c" in str(labels) for _, labels in after)
