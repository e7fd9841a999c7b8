"""Connecting to Redis (the one factory of every redis-py client: store, guards, breakers), what every group
of store operations shares, and the wait for replicas.

Redis failures surface as ``ServiceUnavailable`` (``redis_errors``), so callers never see a Redis error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, RedisError

from config import RedisEndpoint, RedisOptions
from dispatcher.constants import REPLICATION_FENCE_KEY
from dispatcher.errors import ServiceUnavailable
from dispatcher.sealing import Sealer

MAX_REDIS_CONNECTIONS = 256
"""Connections one process's pool opens at most."""
DUE_GRACE = 2.0
"""Seconds a queued job has to be taken by a worker before the sweeper queues it again (by default; the
dispatcher's processes use ``Settings.sweep_interval``)."""
POSTBACK_GRACE = 15.0
"""Seconds an owed postback's job has to be done (its POST takes at most 10) before it is queued again."""
HEALTH_CHECK_INTERVAL = 30


def _packing_in_c(connection: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection`` packing its commands with hiredis, as redis-py's own blocking clients do: its asyncio
    connections pack in Python (68 µs for a script call of 100 arguments, such as a new OTP's record, against
    8 µs; the same bytes). A value Redis cannot take raises redis-py's ``DataError`` as before."""

    def pack_command(self: AbstractConnection, *args: Any) -> list[bytes]:
        name, *rest = args
        words = name.split() if isinstance(name, (str, bytes)) else [name]  # "CONFIG SET": two words
        try:
            return [hiredis.pack_command((*words, *rest))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    return type(connection.__name__, (connection,), {"pack_command": pack_command})


_CONNECTIONS = {
    "redis": _packing_in_c(Connection),
    "rediss": _packing_in_c(SSLConnection),
    "unix": _packing_in_c(UnixDomainSocketConnection),
    "sentinel": _packing_in_c(SentinelManagedConnection),
}
"""The connection class of each URL scheme."""


def connect(url: str, timeout: float, options: RedisOptions | None = None) -> aioredis.Redis:
    """A pooled client whose every command gives up after ``timeout`` seconds, so callers never hang.

    At most ``MAX_REDIS_CONNECTIONS`` connections; a command beyond them waits (within ``timeout``)
    for a free one rather than failing, so a burst of concurrent runs queues instead of erroring. A
    command whose pooled connection turns out closed (Redis restarted since it was opened) is sent once
    more on a new connection, so the first requests after Redis returns do not fail; a timeout is not
    retried.

    ``options`` add the ACL user and password, the TLS files of a ``rediss://`` URL, and the master name of
    a ``sentinel://`` one: then every new connection asks the sentinels where the primary is, so after a
    failover the pool reaches the new primary by itself (a connection to a demoted one is dropped on its
    first READONLY answer).
    """
    return connect_to(RedisEndpoint(url, options or RedisOptions(), timeout))


def connect_to(endpoint: RedisEndpoint) -> aioredis.Redis:
    """``connect`` for one of ``Settings``' endpoints (``store_redis``, ``broker_redis``)."""
    timeout, options = endpoint.timeout, endpoint.options
    pool_options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "max_connections": MAX_REDIS_CONNECTIONS,
        "timeout": timeout,
        "connection_class": _CONNECTIONS[urlsplit(endpoint.url).scheme],
        **credentials(options),
        **tls_files(options),
    }
    if endpoint.sentinels:
        sentinel_options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if options.sentinel_password.get_secret_value():
            sentinel_options["password"] = options.sentinel_password.get_secret_value()
        sentinel = Sentinel(list(endpoint.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
        client: aioredis.Redis = sentinel.master_for(
            options.master_name,
            connection_pool_class=_BlockingSentinelPool,
            db=endpoint.database,
            **pool_options,
        )
        return client
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(endpoint.url, **pool_options))


def credentials(options: RedisOptions) -> dict[str, str]:
    """The ACL user and password of ``options``, as redis-py's connection arguments (none if unset)."""
    found = {"username": options.username, "password": options.password.get_secret_value()}
    return {name: value for name, value in found.items() if value}


def tls_files(options: RedisOptions) -> dict[str, str]:
    """The CA, certificate and key files of ``options``, as redis-py's connection arguments (none if unset);
    the server's certificate is always verified."""
    files = {"ssl_ca_certs": options.ca_file, "ssl_certfile": options.cert_file, "ssl_keyfile": options.key_file}
    return {name: str(path) for name, path in files.items() if path is not None}


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The primary's pool of a Sentinel deployment that waits for a free connection, as ``connect``'s does;
    closing it closes its connections to the sentinels too."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # closing the client, not a failover's drop of idle connections
            await self.sentinel_manager.aclose()


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turns any Redis failure inside it into ``ServiceUnavailable``."""
    try:
        yield
    except RedisError as exc:
        raise ServiceUnavailable("The OTP store (Redis) is not answering; try again shortly.") from exc


class Connected:
    """The base of each group of operations (``producer``, ``verification``, ``runs``, ``sweeps``): one Redis client,
    the sealer of specs and the grace period records outlive their codes by. Each group loads its own
    scripts in ``__init__`` and passes these on, so ``OtpStore`` can be all three."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int, due_grace: float = DUE_GRACE) -> None:
        self._redis = redis
        self._sealer = sealer
        self._grace = grace
        self._due_grace = due_grace
        """Seconds a queued job has to be taken by a worker before the sweeper queues it again."""

    async def close(self) -> None:
        await self._redis.aclose()


class Replicas:
    """Makes the writes a request made wait until ``count`` replicas hold them (Redis ``WAIT``), or fails.

    ``WAIT`` counts the writes of the connection it is sent on, and a pool hands out any connection; so
    ``confirm`` first writes a key of its own (``REPLICATION_FENCE_KEY``) on the connection it then waits
    on. Replicas apply the primary's writes in order: one that holds the fence holds every write that
    finished before it, the record's, the job's and the outcome's. With a broker of its own (``broker``,
    closed by ``close``), the wait runs there too, for the job.
    """

    def __init__(self, store: aioredis.Redis | None, broker: aioredis.Redis | None, count: int, timeout: float) -> None:
        self._clients = [client for client in (store, broker) if client is not None]
        self._broker = broker
        self._count = count
        self._timeout_ms = max(1, int(timeout * 1000))

    async def confirm(self) -> None:
        """Return once ``count`` replicas hold every write made so far; ``ServiceUnavailable`` if they do not
        within the timeout (or Redis does not answer). Does nothing when ``count`` is 0."""
        if not self._count:
            return
        for client in self._clients:
            async with redis_errors(), client.pipeline(transaction=False) as pipe:
                pipe.incr(REPLICATION_FENCE_KEY)
                pipe.wait(self._count, self._timeout_ms)
                _, confirmed = await pipe.execute()
            if int(confirmed) < self._count:
                raise ServiceUnavailable(
                    f"Only {confirmed} of the {self._count} Redis replicas asked for confirmed the write in time;"
                    " try again shortly."
                )

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.aclose()
