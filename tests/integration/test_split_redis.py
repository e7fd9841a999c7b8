"""The OTP store and the Celery broker on two Redis deployments (``OTP_BROKER_URL``, README "Scaling out"):
records, limits and breakers stay in one, jobs and task events travel through the other."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from devtools.embedded_redis import EmbeddedRedis
from dispatcher.constants import DUE_KEY
from tests.support import Api, Stack, random_number, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("broker")) as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture(scope="module")
def split(store: EmbeddedRedis, broker: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("split-logs")
    with running_stack(store.url, logs, OTP_BROKER_URL=broker.url) as stack:
        yield stack


@pytest.fixture
async def api(split: Stack, store: EmbeddedRedis) -> AsyncIterator[Api]:
    client = redis.Redis.from_url(store.url, decode_responses=True)
    async with aiohttp.ClientSession() as session:
        yield Api(split, session, client)
    client.close()


async def test_with_a_broker_of_its_own_an_otp_is_delivered_and_verifies(
    api: Api, store: EmbeddedRedis, broker: EmbeddedRedis
) -> None:
    recipient = random_number()
    otp_id = await api.send(recipient=recipient)

    report = await api.delivered(otp_id)
    status = await api.verify(otp_id, (await api.inbox(recipient))["code"])

    in_store = redis.Redis.from_url(store.url, decode_responses=True)
    in_broker = redis.Redis.from_url(broker.url, decode_responses=True)
    assert (report["delivered_by"], status) == ("d7", "APPROVED")
    assert in_store.exists(f"otp:{otp_id}")
    assert not in_broker.exists(f"otp:{otp_id}")
    assert in_broker.keys("_kombu.binding.*")  # the queues' bindings: the broker's
    assert not in_store.keys("_kombu.binding.*")
    assert not in_broker.exists(DUE_KEY)  # the due index: the store's
