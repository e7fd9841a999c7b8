"""Connecting to Redis: an outage is an error of the dispatcher's, in bounded time; a failover is followed; a
script Redis forgot is loaded again; writes wait for replicas when asked to."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError, DataError

from config import RedisOptions
from devtools.embedded_redis import EmbeddedRedis
from devtools.redis_ha import MASTER_NAME, SentinelGroup, redis_7
from dispatcher.errors import ServiceUnavailable
from dispatcher.sealing import Sealer
from dispatcher.store import MAX_REDIS_CONNECTIONS, OtpStore, Replicas, connect, record_script
from tests.dispatcher.store.otps import NOW
from tests.support import own_database, wait_for


async def test_redis_down_is_service_unavailable_within_the_timeout() -> None:
    dead = OtpStore(connect("redis://127.0.0.1:1/0", 0.5), Sealer("secret"), grace=60)
    started = time.monotonic()

    with pytest.raises(ServiceUnavailable):
        await dead.report("any", NOW)

    assert time.monotonic() - started < 2
    await dead.close()


async def test_a_script_call_of_many_arguments_reaches_redis_as_sent(redis_url: str) -> None:
    # The clients pack commands with hiredis (dispatcher/store/connection.py): every kind of value a store
    # operation passes arrives unchanged, however many there are.
    redis = connect(own_database(redis_url), 1.0)
    echo = record_script(redis, "return ARGV")
    sent = ["0", -2, 17, 1764500000.123456, 0.1, "h\u00e9llo \u2713", "", "x" * 10_000] * 20

    assert await echo(args=sent) == [str(value) for value in sent]
    with pytest.raises(DataError):  # as redis-py's own packer: nothing Redis cannot take goes out
        await echo(args=[None])
    await redis.aclose()


async def test_a_burst_of_more_commands_than_connections_waits_for_free_ones(redis_url: str) -> None:
    # Every connection of the pool is held 0.2 s by a blocking pop; the commands beyond them wait their turn
    redis = connect(own_database(redis_url), 2.0)
    burst = MAX_REDIS_CONNECTIONS + 44

    answers = await asyncio.gather(*(redis.blpop(["nothing-comes"], timeout=0.2) for _ in range(burst)))

    assert answers == [None] * burst  # none refused for want of a connection
    await redis.aclose()


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """A Redis 7 primary and one replica in sync with it."""
    with EmbeddedRedis(tmp_path / "primary", redis_7()) as primary:
        replica = EmbeddedRedis(tmp_path / "replica", redis_7(), [f"replicaof 127.0.0.1 {primary.port}"])
        with replica, replica.client() as client:
            deadline = time.monotonic() + 10
            while client.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica never synced"
                time.sleep(0.02)
            yield primary, replica


async def test_a_script_flushed_from_redis_is_loaded_again_on_its_next_call(redis_url: str) -> None:
    # Given a script that ran once, so redis-py calls it by its SHA from now on
    redis = connect(own_database(redis_url), 1.0)
    script = record_script(redis, "return 'ran'")
    assert await script() == "ran"

    # When Redis forgets every script (a failover to a replica that never saw it, a restart, SCRIPT FLUSH)
    await redis.script_flush()

    # Then the next call still runs it: redis-py answers NOSCRIPT by loading the script and calling it again
    assert await script() == "ran"
    await redis.aclose()


async def test_a_sentinel_client_reaches_the_promoted_replica_by_itself(tmp_path: Path) -> None:
    with SentinelGroup(tmp_path) as group:
        client = connect(group.url, 1.0, RedisOptions(master_name=MASTER_NAME))
        await client.set("kept", "yes")
        await client.wait(1, 1000)
        old_port = group.primary.port

        group.primary.kill()

        async def written() -> bool | None:
            try:
                await client.set("after", "failover")
            except ConnectionError:
                return None
            return True

        await wait_for(written, within=15)
        assert group.master_port() != old_port
        assert await client.get("kept") == "yes"
        await client.aclose()


async def test_confirm_returns_once_a_replica_holds_the_writes(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, replica = primary_and_replica
    redis = connect(primary.url, 1.0)
    await redis.set("otp:confirmed", "1")

    await Replicas(redis, None, count=1, timeout=0.5).confirm()

    with replica.client() as client:
        assert client.get("otp:confirmed") == b"1"
    await redis.aclose()


async def test_confirm_is_service_unavailable_when_too_few_replicas_answer_in_time(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, _ = primary_and_replica
    redis = connect(primary.url, 1.0)
    started = time.monotonic()

    with pytest.raises(ServiceUnavailable, match="Only 1 of the 2 Redis replicas"):
        await Replicas(redis, None, count=2, timeout=0.3).confirm()

    assert 0.3 <= time.monotonic() - started < 1.0
    await redis.aclose()
