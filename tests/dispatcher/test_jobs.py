"""The publisher's adaptive batching, against a Redis database no worker consumes (the session's Redis, db 1)."""

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from config import RedisEndpoint, RedisOptions, Settings
from dispatcher.constants import SEND_QUEUE
from dispatcher.jobs import JobQueue, broker_url, celery_config
from dispatcher.schemas import SendJob

QueueFactory = Callable[..., JobQueue]


@pytest.fixture
def unconsumed(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    url = redis_url.rsplit("/", 1)[0] + "/1"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.delete(SEND_QUEUE)
    yield url, client
    client.delete(SEND_QUEUE)
    client.close()


@pytest.fixture
async def job_queue(unconsumed: tuple[str, redis.Redis]) -> AsyncIterator[QueueFactory]:
    url, _ = unconsumed
    queues: list[JobQueue] = []

    def make(**settings: object) -> JobQueue:
        queues.append(JobQueue(Settings.model_validate({"redis_url": url, **settings})))
        return queues[-1]

    yield make
    for queue in queues:
        await queue.close()


def published(client: redis.Redis) -> list[list[SendJob]]:
    """The jobs of every message on the send queue, oldest message first."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(SEND_QUEUE, 0, -1))]
    return [[SendJob(*job) for job in json.loads(base64.b64decode(m["body"]))[0][0]] for m in messages]


def jobs(count: int) -> list[SendJob]:
    return [SendJob(f"otp-{index}", 1) for index in range(count)]


async def test_a_lone_send_is_published_at_once_in_a_job_of_its_own(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    await job_queue().enqueue_send(SendJob("otp-alone", 1), time.time() + 60)

    assert published(unconsumed[1]) == [[SendJob("otp-alone", 1)]]


async def test_sends_that_arrive_while_a_job_is_published_go_out_together(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    queue = job_queue()

    await asyncio.gather(*(queue.enqueue_send(job, time.time() + 60) for job in jobs(50)))

    messages = published(unconsumed[1])
    assert sorted(job for message in messages for job in message) == sorted(jobs(50))
    assert len(messages) < 50


async def test_no_job_carries_more_than_the_batch_setting(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    queue = job_queue(job_batch=20)

    await asyncio.gather(*(queue.enqueue_send(job, time.time() + 60) for job in jobs(50)))

    messages = published(unconsumed[1])
    assert sum(len(message) for message in messages) == 50
    assert max(len(message) for message in messages) == 20


async def test_a_send_soon_after_a_publish_waits_for_the_linger_with_the_sends_arriving_meanwhile(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    queue = job_queue(job_linger=0.3)
    await queue.enqueue_send(SendJob("otp-first", 1), time.time() + 60)
    begun = time.monotonic()

    await asyncio.gather(*(queue.enqueue_send(job, time.time() + 60) for job in jobs(3)))

    assert time.monotonic() - begun >= 0.25
    assert published(unconsumed[1]) == [[SendJob("otp-first", 1)], jobs(3)]


async def test_a_send_after_a_quiet_spell_does_not_wait_for_the_linger(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    queue = job_queue(job_linger=0.3)
    await queue.enqueue_send(SendJob("otp-first", 1), time.time() + 60)
    await asyncio.sleep(0.35)  # the quiet spell is the situation under test, not a wait for a condition
    begun = time.monotonic()

    await queue.enqueue_send(SendJob("otp-later", 1), time.time() + 60)

    assert time.monotonic() - begun < 0.2
    assert published(unconsumed[1]) == [[SendJob("otp-first", 1)], [SendJob("otp-later", 1)]]


async def test_a_full_batch_does_not_wait_for_the_linger(
    job_queue: QueueFactory, unconsumed: tuple[str, redis.Redis]
) -> None:
    queue = job_queue(job_linger=1.0, job_batch=10)
    await queue.enqueue_send(SendJob("otp-first", 1), time.time() + 60)

    await asyncio.wait_for(asyncio.gather(*(queue.enqueue_send(job, time.time() + 60) for job in jobs(10))), 0.5)

    assert published(unconsumed[1])[1] == jobs(10)


def test_a_redis_socket_is_the_broker_by_kombus_name_for_it() -> None:
    assert broker_url(endpoint("unix:///run/redis.sock?db=2")) == "redis+socket:///run/redis.sock?virtual_host=2"
    assert broker_url(endpoint("redis://cache:6379/1")) == "redis://cache:6379/1"


def endpoint(url: str, **options: object) -> RedisEndpoint:
    return RedisEndpoint(url, RedisOptions.model_validate(options), 1.0)


def test_an_acl_user_and_password_go_into_the_brokers_url_quoted() -> None:
    url = broker_url(endpoint("redis://cache:6379/1", username="otp", password="p@ss/word"))

    assert url == "redis://otp:p%40ss%2Fword@cache:6379/1"


def test_sentinels_are_kombus_list_of_sentinel_urls_with_the_master_name_as_a_transport_option() -> None:
    settings = Settings(
        redis_url="sentinel://s1:26379,s2,s3:26380/2",
        redis={"master_name": "otp", "password": "pw", "sentinel_password": "spw"},
    )

    config = celery_config(settings)

    assert config["broker_url"] == "sentinel://:pw@s1:26379/2;sentinel://:pw@s2:26379/2;sentinel://:pw@s3:26380/2"
    options = config["broker_transport_options"]
    assert options["master_name"] == "otp"
    assert options["sentinel_kwargs"] == {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "password": "spw"}


def test_a_tls_broker_verifies_the_server_against_the_configured_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here")

    config = celery_config(Settings(redis_url="rediss://cache:6380/0", redis={"ca_file": ca}))

    assert config["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca)}


def test_the_broker_is_the_store_unless_a_broker_url_of_its_own_is_set() -> None:
    shared = celery_config(Settings(redis_url="redis://store:6379/0"))
    split = celery_config(
        Settings(redis_url="redis://store:6379/0", broker_url="redis://queue:6379/0", broker={"username": "jobs"})
    )

    assert shared["broker_url"] == "redis://store:6379/0"
    assert split["broker_url"] == "redis://jobs:@queue:6379/0"
