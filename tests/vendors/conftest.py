"""A canned vendor server and a client session, per test."""

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.vendors.canned import Canned


@pytest.fixture
async def canned() -> AsyncIterator[tuple[Canned, str]]:
    vendor = Canned()
    server = TestServer(vendor.app(), host="127.0.0.1")
    await server.start_server()
    yield vendor, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
