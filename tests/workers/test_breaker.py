"""The shared circuit breaker against the real Redis; time is passed in, so cool-downs need no waiting."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from config import ProviderSettings
from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port
from dispatcher.constants import breaker_key
from dispatcher.store import connect
from workers.breaker import SYNC_INTERVAL, CallResult, CircuitBreakers

NOW = 1_000_000.0


@pytest.fixture
async def breakers(redis_url: str) -> AsyncIterator[CircuitBreakers]:
    redis = connect(redis_url, 1.0)
    yield CircuitBreakers(redis)
    await redis.aclose()


def vendor(**changes: object) -> ProviderSettings:
    fields: dict[str, object] = {
        "name": f"v{uuid.uuid4().hex[:8]}",
        "kind": "console",
        "base_url": "http://127.0.0.1:1",
        "breaker_failures": 3,
        "breaker_cooldown": 30,
        "breaker_min_calls": 10,
        "breaker_error_rate": 0.5,
    }
    return ProviderSettings.model_validate(fields | changes)


async def test_a_new_vendor_is_allowed(breakers: CircuitBreakers) -> None:
    assert await breakers.allow(vendor(), NOW)


async def test_k_consecutive_failures_open_the_circuit(breakers: CircuitBreakers) -> None:
    v = vendor()
    for _ in range(3):
        await breakers.record(v, CallResult.FAILURE, NOW)

    assert await breakers.state(v.name) == "open"
    assert not await breakers.allow(v, NOW + 1)


async def test_a_success_resets_the_consecutive_count(breakers: CircuitBreakers) -> None:
    v = vendor()
    for outcome in (CallResult.FAILURE, CallResult.FAILURE, CallResult.SUCCESS, CallResult.FAILURE, CallResult.FAILURE):
        await breakers.record(v, outcome, NOW)

    assert await breakers.state(v.name) == "closed"


async def test_an_error_rate_over_the_window_opens_the_circuit(breakers: CircuitBreakers) -> None:
    v = vendor(breaker_failures=100)
    for index in range(10):
        await breakers.record(v, CallResult.FAILURE if index % 2 else CallResult.SUCCESS, NOW)

    assert await breakers.state(v.name) == "open"


async def test_a_vendor_unavailable_answer_opens_the_circuit_at_once(breakers: CircuitBreakers) -> None:
    v = vendor()

    await breakers.record(v, CallResult.TRIP, NOW)

    assert not await breakers.allow(v, NOW)


async def test_after_the_cool_down_exactly_one_probe_goes_through(breakers: CircuitBreakers) -> None:
    v = vendor()
    await breakers.record(v, CallResult.TRIP, NOW)

    allowed = [await breakers.allow(v, NOW + 30) for _ in range(5)]

    assert allowed == [True, False, False, False, False]
    assert await breakers.state(v.name) == "half_open"


async def test_a_successful_probe_closes_the_circuit(breakers: CircuitBreakers) -> None:
    v = vendor()
    await breakers.record(v, CallResult.TRIP, NOW)
    await breakers.allow(v, NOW + 30)

    await breakers.record(v, CallResult.SUCCESS, NOW + 30)

    assert await breakers.allow(v, NOW + 31)


async def test_a_failed_probe_opens_the_circuit_again(breakers: CircuitBreakers) -> None:
    v = vendor()
    await breakers.record(v, CallResult.TRIP, NOW)
    await breakers.allow(v, NOW + 30)

    await breakers.record(v, CallResult.FAILURE, NOW + 30)

    assert not await breakers.allow(v, NOW + 31)
    assert await breakers.allow(v, NOW + 60)


async def test_successes_counted_locally_reach_redis_with_the_next_sync(
    breakers: CircuitBreakers, redis_client: redis.Redis
) -> None:
    v = vendor()
    await breakers.allow(v, NOW)
    for _ in range(3):
        await breakers.record(v, CallResult.SUCCESS, NOW)

    await breakers.allow(v, NOW + SYNC_INTERVAL)

    assert redis_client.hget(breaker_key(v.name), "calls") == "3"


async def test_runs_that_find_the_copy_stale_at_once_share_one_sync(tmp_path: Path) -> None:
    # A Redis of its own: its command counts are this test's alone.
    with EmbeddedRedis(tmp_path) as server:
        redis_async = connect(server.url, 1.0)
        counts = redis.Redis.from_url(server.url)
        breakers, v = CircuitBreakers(redis_async), vendor()
        await breakers.allow(v, NOW)
        for _ in range(100):
            await breakers.record(v, CallResult.SUCCESS, NOW + 1)  # counted here, no round trip
        before = counts.info("commandstats")["cmdstat_evalsha"]["calls"]

        allowed = await asyncio.gather(*(breakers.allow(v, NOW + 2) for _ in range(200)))

        assert all(allowed)
        assert counts.info("commandstats")["cmdstat_evalsha"]["calls"] == before + 1
        assert counts.hget(breaker_key(v.name), "calls") == b"100"
        await redis_async.aclose()


async def test_a_circuit_another_process_opened_is_honoured_after_one_sync_interval(
    breakers: CircuitBreakers, redis_url: str
) -> None:
    v = vendor()
    other_redis = connect(redis_url, 1.0)
    await breakers.allow(v, NOW)

    await CircuitBreakers(other_redis).record(v, CallResult.TRIP, NOW)

    assert await breakers.allow(v, NOW)  # its copy is fresh
    assert not await breakers.allow(v, NOW + SYNC_INTERVAL)
    await other_redis.aclose()


async def test_an_unreachable_redis_leaves_the_local_state_and_fails_no_call() -> None:
    unreachable = connect(f"redis://127.0.0.1:{free_port()}/0", 0.2)
    breakers = CircuitBreakers(unreachable)
    flaky = vendor()

    outcomes = [await breakers.record(flaky, outcome, NOW) for outcome in (CallResult.SUCCESS, CallResult.FAILURE)]

    assert outcomes == ["closed", "closed"]
    await unreachable.aclose()


async def test_states_follow_the_shared_breaker_when_another_process_closes_it(breakers: CircuitBreakers) -> None:
    v = vendor()
    await breakers.record(v, CallResult.TRIP, NOW)
    assert await breakers.states([v.name]) == {v.name: True}

    await breakers.record(v, CallResult.SUCCESS, NOW + 31)  # another process's probe succeeded

    assert await breakers.states([v.name]) == {v.name: False}


async def test_an_open_circuit_lets_the_next_call_through_at_the_end_of_its_cool_down(
    breakers: CircuitBreakers,
) -> None:
    v = vendor()
    await breakers.record(v, CallResult.TRIP, NOW)

    assert await breakers.next_call_at(v) == NOW + 30


async def test_a_half_open_circuit_lets_the_next_call_through_when_its_probe_times_out(
    breakers: CircuitBreakers,
) -> None:
    v = vendor(timeout=2)
    await breakers.record(v, CallResult.TRIP, NOW)
    assert await breakers.allow(v, NOW + 30)  # the probe

    assert await breakers.next_call_at(v) == NOW + 32


async def test_a_closed_circuit_lets_a_call_through_at_once(breakers: CircuitBreakers) -> None:
    assert await breakers.next_call_at(vendor()) == 0.0
