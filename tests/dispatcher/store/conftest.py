"""A store over the session's real Redis, on a database of its own (the stack's sweeper would take these tests'
OTPs, which have no job, for lost ones), per test."""

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from tests.support import own_database


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[OtpStore]:
    store = OtpStore(connect(own_database(redis_url), 1.0), Sealer("secret"), grace=60)
    yield store
    await store.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the store's database (in place of the session's), to look at what the store wrote."""
    client = redis.Redis.from_url(own_database(redis_url), decode_responses=True)
    yield client
    client.close()
