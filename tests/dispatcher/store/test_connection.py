"""Connecting to the store's Redis: an outage is an error of the dispatcher's, in bounded time."""

import time

import pytest

from dispatcher.errors import ServiceUnavailable
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from tests.dispatcher.store.otps import NOW


async def test_redis_down_is_service_unavailable_within_the_timeout() -> None:
    dead = OtpStore(connect("redis://127.0.0.1:1/0", 0.5), Sealer("secret"), grace=60)
    started = time.monotonic()

    with pytest.raises(ServiceUnavailable):
        await dead.report("any", NOW)

    assert time.monotonic() - started < 2
    await dead.close()
