"""The API in-process: ``create_app(Settings(...))`` served by aiohttp's ``TestServer`` on the session's Redis.

No worker runs here. The app uses a database of the session's Redis that no worker consumes (the
session's stack, when one runs, uses the URL's own database), so the jobs it publishes wait in the
queue, where a test may count them, and are dropped after each test. The server runs on an event loop
of its own thread, so that synchronous clients (``http.client``, Hypothesis, schemathesis) can call it
as well as the tests' own aiohttp sessions.
"""

from __future__ import annotations

import asyncio
import http.client
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from config import Settings
from dispatcher.app import create_app
from dispatcher.constants import SEND_QUEUE
from tests.support import own_database

TOKEN = "in-process-token"
SECOND_TOKEN = "second-token"
REQUEST_TIMEOUT = 5.0


def call(base_url: str, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    """One request with exactly these bytes and ``headers`` (underscores become dashes), within a few seconds."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ServedApp:
    """A ``TestServer`` of ``create_app(settings)`` on an event loop of its own thread."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-api", daemon=True)
        self._server = TestServer(create_app(settings), host="127.0.0.1")
        self.url = ""

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start_server(), self._loop).result(REQUEST_TIMEOUT)
        self.url = str(self._server.make_url("")).rstrip("/")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.close(), self._loop).result(REQUEST_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(REQUEST_TIMEOUT)
        self._loop.close()


class LocalApi:
    """A client of the in-process API: D7 calls (``post``, ``get``) and the jobs it queued (``queued``)."""

    def __init__(self, url: str, token: str, session: aiohttp.ClientSession, broker: redis.Redis) -> None:
        self.url = url
        self.token = token
        self.session = session
        self.broker = broker
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.post(
            self.url + path, json=body, headers=self.headers if headers is None else headers
        ) as response:
            return response.status, await response.json()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.get(self.url + path, headers=self.headers if headers is None else headers) as response:
            return response.status, await response.json()

    def queued(self) -> int:
        """Send jobs waiting in the broker (nothing consumes them here)."""
        return int(self.broker.llen(SEND_QUEUE))


@pytest.fixture(scope="session")
def local_settings(redis_url: str) -> Settings:
    """Settings of an in-process API: two tokens, the database no worker reads, a postback secret."""
    return Settings(
        redis_url=own_database(redis_url),
        api_tokens=f"{TOKEN},{SECOND_TOKEN}",
        secret_key=secrets.token_urlsafe(32),
        postback_secret="postback-secret",
    )


@pytest.fixture(scope="session")
def served_app(local_settings: Settings) -> Iterator[str]:
    """The URL of the session's in-process API, with ``local_settings``."""
    served = ServedApp(local_settings)
    served.start()
    yield served.url
    served.stop()


@pytest.fixture
def broker(local_settings: Settings) -> Iterator[redis.Redis]:
    """The in-process API's Redis; the jobs a test queued are dropped after it."""
    assert local_settings.redis_url is not None
    client = redis.Redis.from_url(local_settings.redis_url, decode_responses=True)
    yield client
    client.delete(SEND_QUEUE)
    client.close()


@pytest.fixture
def local_url(served_app: str, broker: redis.Redis) -> str:
    """The URL of the session's in-process API (token ``TOKEN``), for synchronous clients."""
    return served_app


@pytest.fixture
async def local_api(served_app: str, broker: redis.Redis) -> AsyncIterator[LocalApi]:
    """A client of the session's in-process API."""
    async with aiohttp.ClientSession() as session:
        yield LocalApi(served_app, TOKEN, session, broker)


LocalApiFactory = Callable[..., Awaitable[LocalApi]]


@pytest.fixture
async def start_local_api(local_settings: Settings, broker: redis.Redis) -> AsyncIterator[LocalApiFactory]:
    """Starts in-process APIs of the test's own, each with ``local_settings`` changed as given and a token of
    its own; the test's event loop serves them."""
    servers: list[TestServer] = []
    async with aiohttp.ClientSession() as session:

        async def start(**changes: Any) -> LocalApi:
            token = secrets.token_urlsafe(12)
            settings = Settings.model_validate(local_settings.model_dump() | changes | {"api_tokens": token})
            server = TestServer(create_app(settings), host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            return LocalApi(str(server.make_url("")).rstrip("/"), token, session, broker)

        yield start
        for server in servers:
            await server.close()
