"""Abuse guards through the HTTP API: each test runs its own API in-process with its own limits and token,
on the session's Redis (no worker: a refused send is one that queued no job)."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from config import Limits
from devtools.embedded_redis import EmbeddedRedis
from dispatcher.constants import limit_key
from dispatcher.errors import ServiceUnavailable
from dispatcher.guards import MEMORY_CEILING, Caller, Guards
from dispatcher.sealing import Sealer
from dispatcher.store import LimitReached, OtpStore, connect
from tests.dispatcher.conftest import LocalApi, LocalApiFactory
from tests.support import random_number, wait_for


class Guarded:
    def __init__(self, api: LocalApi) -> None:
        self.api = api
        self.url = api.url
        self.session = api.session

    async def send(self, recipient: str, **fields: Any) -> tuple[int, Any, Any]:
        headers = self.api.headers | fields.pop("headers", {})
        body = {"recipient": recipient, "content": "Code {}", **fields}
        async with self.session.post(self.url + "/verify/v1/otp/send-otp", json=body, headers=headers) as response:
            return response.status, await response.json(), response.headers

    async def resend(self, otp_id: str) -> int:
        async with self.session.post(
            self.url + "/verify/v1/otp/resend-otp", json={"otp_id": otp_id}, headers=self.api.headers
        ) as response:
            return response.status

    async def status(self, otp_id: str) -> str:
        _, report = await self.api.get(f"/verify/v1/report/{otp_id}")
        return str(report["status"])

    def queued(self) -> int:
        return self.api.queued()


GuardedFactory = Callable[..., Awaitable[Guarded]]


@pytest.fixture
def guarded(start_local_api: LocalApiFactory) -> GuardedFactory:
    async def start(**limits: Any) -> Guarded:
        return Guarded(await start_local_api(limits=limits))

    return start


async def test_sends_beyond_the_per_number_limit_get_429_with_retry_after(guarded: GuardedFactory) -> None:
    api = await guarded(recipient_sends=2, recipient_window=600)
    number = random_number()
    _, first, _ = await api.send(number, retry_delay=0)
    await api.resend(first["otp_id"])  # resends count too

    status, body, headers = await api.send(number)

    assert (status, body["detail"]["code"]) == (429, "RECIPIENT_LIMIT_REACHED")
    assert 0 < int(headers["Retry-After"]) <= 600


async def test_requests_beyond_the_tokens_daily_limit_get_429(guarded: GuardedFactory) -> None:
    api = await guarded(token_per_day=2)
    await api.send(random_number())
    await api.send(random_number())

    status, body, _ = await api.send(random_number())

    assert (status, body["detail"]["code"]) == (429, "TOKEN_RATE_LIMITED")


async def test_a_burst_beyond_the_tokens_rate_per_second_gets_429(guarded: GuardedFactory) -> None:
    api = await guarded(token_per_second=3)

    answers = await asyncio.gather(*(api.send(random_number()) for _ in range(10)))

    assert 429 in [status for status, _, _ in answers]


async def test_requests_beyond_the_per_address_limit_get_429(guarded: GuardedFactory, broker: redis.Redis) -> None:
    broker.delete(limit_key("ip", "127.0.0.1"))
    api = await guarded(ip_per_minute=2)
    await api.send(random_number())
    await api.send(random_number())

    status, body, _ = await api.send(random_number())

    assert (status, body["detail"]["code"]) == (429, "IP_RATE_LIMITED")
    broker.delete(limit_key("ip", "127.0.0.1"))


async def test_a_refused_request_uses_no_quota(guarded: GuardedFactory, broker: redis.Redis) -> None:
    broker.delete(limit_key("ip", "127.0.0.1"))
    api = await guarded(ip_per_minute=2, recipient_sends=1)
    number = random_number()
    await api.send(number)
    assert (await api.send(number))[0] == 429  # refused by the per-number limit...

    assert (await api.send(random_number()))[0] == 200  # ...so the address has used one of its two
    broker.delete(limit_key("ip", "127.0.0.1"))


async def test_a_country_off_the_allowlist_is_refused_with_403(guarded: GuardedFactory) -> None:
    api = await guarded(countries=("+44",))

    status, body, _ = await api.send(random_number())

    assert (status, body["detail"]["code"]) == (403, "COUNTRY_NOT_ALLOWED")
    assert (await api.send("+447911123456"))[0] == 200


async def test_a_premium_rate_number_is_refused_with_403_before_any_quota_is_used(guarded: GuardedFactory) -> None:
    api = await guarded(recipient_sends=1)

    status, body, _ = await api.send("+33899123456")  # a French premium-rate number (08 9x)

    assert (status, body["detail"]["code"]) == (403, "PREMIUM_NUMBER_NOT_ALLOWED")


async def test_premium_rate_numbers_pass_when_the_setting_allows_them(guarded: GuardedFactory) -> None:
    api = await guarded(premium_numbers=True)

    assert (await api.send("+33899123456"))[0] == 200


async def test_a_number_range_over_its_velocity_is_blocked_before_anything_is_queued(
    guarded: GuardedFactory,
) -> None:
    guard = await guarded(prefix_sends=3, prefix_block=900)
    prefix = "+3364" + "".join(secrets.choice("0123456789") for _ in range(2))  # valid mobiles random_number never uses
    numbers = [prefix + "".join(secrets.choice("0123456789") for _ in range(5)) for _ in range(5)]
    for number in numbers[:3]:
        assert (await guard.send(number))[0] == 200
    queued = guard.queued()

    status, body, headers = await guard.send(numbers[3])
    again = await guard.send(numbers[4])

    assert (status, body["detail"]["code"], headers["Retry-After"]) == (429, "PREFIX_BLOCKED", "900")
    assert again[0] == 429
    assert guard.queued() == queued
    other = "+3362" + "".join(secrets.choice("0123456789") for _ in range(7))  # random_number() sends +3361
    assert (await guard.send(other))[0] == 200  # another range is not affected


async def test_with_one_in_flight_a_second_send_names_the_open_otp(guarded: GuardedFactory) -> None:
    guard = await guarded(one_in_flight=True)
    number = random_number()
    _, first, _ = await guard.send(number, expiry=1)

    status, body, _ = await guard.send(number)

    assert (status, body["detail"]["code"], body["detail"]["otp_id"]) == (409, "OTP_IN_FLIGHT", first["otp_id"])

    async def expired() -> bool | None:
        return True if await guard.status(first["otp_id"]) == "EXPIRED" else None

    await wait_for(expired)
    assert (await guard.send(number))[0] == 200


async def test_an_idempotent_replay_gets_the_first_answer_and_queues_nothing(guarded: GuardedFactory) -> None:
    guard = await guarded()
    number, key = random_number(), {"Idempotency-Key": secrets.token_hex(8)}
    _, first, _ = await guard.send(number, headers=key)
    queued = guard.queued()

    status, replay, _ = await guard.send(number, headers=key)

    assert (status, replay) == (200, first)
    assert guard.queued() == queued


async def test_an_idempotency_key_reused_with_another_body_is_422(guarded: GuardedFactory) -> None:
    guard = await guarded()
    key = {"Idempotency-Key": secrets.token_hex(8)}
    await guard.send(random_number(), headers=key)

    status, body, _ = await guard.send(random_number(), headers=key)

    assert (status, body["detail"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_codes_weaker_than_20_bits_are_refused(guarded: GuardedFactory) -> None:
    guard = await guarded()

    status, body, _ = await guard.send(random_number(), otp_code_length=5)

    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "otp_code_length"]


async def test_refusals_are_counted_in_the_metrics(guarded: GuardedFactory) -> None:
    api = await guarded(recipient_sends=1)
    number = random_number()
    await api.send(number)
    await api.send(number)

    async with api.session.get(api.url + "/metrics") as response:
        text = await response.text()

    assert 'otp_requests_refused_total{code="RECIPIENT_LIMIT_REACHED"}' in text


@dataclass(frozen=True)
class OwnRedis:
    """Guards and a store over a Redis of the test's own, whose maxmemory it sets."""

    guards: Guards
    store: OtpStore
    client: aioredis.Redis

    async def count_one_send(self) -> None:
        recipient = self.guards.recipient(random_number())
        await self.store.count_send(self.guards.limits(recipient, Caller(token="t", ip="127.0.0.1")))


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    with EmbeddedRedis(tmp_path) as server:
        client = connect(server.url, 1.0)
        sealer = Sealer("secret")
        yield OwnRedis(Guards(client, sealer, Limits()), OtpStore(client, sealer, grace=60), client)
        await client.aclose()


async def test_a_redis_without_maxmemory_always_takes_sends(own_redis: OwnRedis) -> None:
    await own_redis.count_one_send()


async def test_a_redis_used_beyond_the_ceiling_of_its_maxmemory_takes_no_more_sends(own_redis: OwnRedis) -> None:
    client = own_redis.client
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory", int(used / MEMORY_CEILING) - 1024)

    with pytest.raises(LimitReached) as refused:
        await own_redis.count_one_send()

    assert refused.value.code == "REDIS_FULL"
    assert await client.keys(limit_key("*", "*")) == []  # a refused send uses no quota
    answer = own_redis.guards.refusal(refused.value, own_redis.guards.recipient(random_number()))
    assert isinstance(answer, ServiceUnavailable)


async def test_a_redis_below_the_ceiling_takes_sends(own_redis: OwnRedis) -> None:
    client = own_redis.client
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory", int(used / MEMORY_CEILING) + 256 * 1024)

    await own_redis.count_one_send()
