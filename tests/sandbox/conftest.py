"""A sandbox server on a real loopback port, and a client session for it."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from sandbox import SandboxCredentials, create_sandbox_app

CREDENTIALS = SandboxCredentials()
D7_AUTH = {"Authorization": f"Bearer {CREDENTIALS.d7_token}"}
OCTOPUSH_AUTH = {"api-login": CREDENTIALS.octopush_login, "api-key": CREDENTIALS.octopush_key}


class Sandbox:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def fault(self, vendor: str, **faults: Any) -> None:
        status, body = await self.request("PUT", f"/_sandbox/faults/{vendor}", json=faults)
        assert status == 200, body


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    server = TestServer(create_sandbox_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Sandbox(str(server.make_url("")).rstrip("/"), session)
    await server.close()
