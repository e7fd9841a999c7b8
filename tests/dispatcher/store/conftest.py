"""A store over the session's real Redis, per test."""

from collections.abc import AsyncIterator

import pytest

from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[OtpStore]:
    store = OtpStore(connect(redis_url, 1.0), Sealer("secret"), grace=60)
    yield store
    await store.close()
