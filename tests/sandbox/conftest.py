"""A sandbox server on a real loopback port, a client session for it, and a receiver for its callbacks."""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox import SandboxCredentials, create_sandbox_app
from tests.support import wait_for

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


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    content_type: str
    headers: dict[str, str]
    fields: dict[str, Any]
    """The form fields or the JSON object."""
    at: float
    """``time.monotonic()`` on arrival."""


class Receiver:
    """A small HTTP server on loopback standing in for the dispatcher's callback routes (and the phone's URL):
    it records every request and answers ``answers`` in turn (statuses), then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = dict(await request.post())
        self.received.append(
            Received(
                request.method, request.path, request.content_type, dict(request.headers), fields, time.monotonic()
            )
        )
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response({"received": True}, status=status)

    async def wait(self, count: int = 1, within: float = 5.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived."""

        async def arrived() -> list[Received] | None:
            return self.received[:count] if len(self.received) >= count else None

        result: list[Received] = await wait_for(arrived, within=within)
        return result


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = str(server.make_url("")).rstrip("/")
    yield receiver
    await server.close()
