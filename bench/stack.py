"""The stack under test, started through the product's public surfaces only.

An embedded Redis, then ``otp-dispatcher sandbox``, ``api`` and ``worker`` subprocesses configured by
``OTP_*`` variables, on free ports of 127.0.0.1. The provider chain has one vendor, the sandbox's D7
(it takes injected latency, and checks its codes itself), and every abuse limit is raised so no guard
refuses a benchmark send. Nothing here imports the dispatcher's internals except the names of its
Redis keys and queue, which the harness reads to know when the stack is idle.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis

from bench import procs
from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port, listening, spawn, start_process, stop_processes, wait_ready
from dispatcher.constants import DUE_KEY, SEND_QUEUE, lease_key
from sandbox import SandboxCredentials

VENDOR = "d7"
VENDOR_SEND = "send-otp"
"""The sandbox's call counter of D7 sends: one per vendor call."""
VENDOR_TIMEOUT = 30.0
"""Longer than the slowest latency a scenario injects (the memory scenario holds calls for seconds)."""
UNLIMITED = "1000000000"


@dataclass(frozen=True)
class Topology:
    """How many processes of each part run; recorded with the results."""

    api_processes: int = 1
    worker_processes: int = 2
    worker_concurrency: int = 100
    """Threads per worker process (``otp-dispatcher worker -- --concurrency=N``)."""


class BenchStack:
    """Start with ``start()``, stop with ``stop()``; also a context manager."""

    def __init__(self, workdir: Path, topology: Topology) -> None:
        self.workdir = workdir
        self.topology = topology
        self.token = secrets.token_urlsafe(16)
        self.redis = EmbeddedRedis(workdir / "redis")
        self.redis_url = ""
        self.sandbox_url = ""
        self.api_url = ""
        self.env: dict[str, str] = {}
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.redis_url = self.redis.start()
        sandbox_port, api_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        self.api_url = f"http://127.0.0.1:{api_port}"
        credentials = SandboxCredentials()
        provider = {
            "name": VENDOR,
            "kind": "d7",
            "base_url": self.sandbox_url,
            "api_token": credentials.d7_token,
            "timeout": VENDOR_TIMEOUT,
        }
        self.env = {
            **{name: value for name, value in os.environ.items() if not name.startswith("OTP_")},
            "OTP_REDIS_URL": self.redis_url,
            "OTP_API_TOKENS": self.token,
            "OTP_SECRET_KEY": secrets.token_urlsafe(32),
            "OTP_API_PORT": str(api_port),
            "OTP_SANDBOX_PORT": str(sandbox_port),
            "OTP_PROVIDERS": json.dumps([provider]),
            "OTP_WORKER_CONCURRENCY": str(self.topology.worker_concurrency),
            "OTP_LIMITS__RECIPIENT_SENDS": UNLIMITED,
            "OTP_LIMITS__TOKEN_PER_SECOND": UNLIMITED,
            "OTP_LIMITS__TOKEN_PER_DAY": UNLIMITED,
            "OTP_LIMITS__IP_PER_MINUTE": UNLIMITED,
            "OTP_LIMITS__PREFIX_SENDS": UNLIMITED,
            "PYTHONUNBUFFERED": "1",
        }
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.children["sandbox"] = start_process(
            ["-m", "cli", "sandbox"], self.env, logs / "sandbox.log", lambda _: listening(sandbox_port)
        )
        self._start_api({})
        self._start_workers({})

    def restart_api(self, changes: dict[str, str]) -> None:
        """Start the API again with ``changes`` to its environment (the stack's own when empty)."""
        stop_processes([self.children.pop("api")])
        self._start_api(changes)

    def restart(self, changes: dict[str, str]) -> None:
        """Start the API and the workers again with ``changes`` to their environment (the stack's own when empty)."""
        workers = [name for name in self.children if name.startswith("worker")]
        stop_processes([self.children.pop(name) for name in ["api", *workers]])
        self._start_api(changes)
        self._start_workers(changes)

    def _start_workers(self, changes: dict[str, str]) -> None:
        logs = self.workdir / "logs"
        for index in range(self.topology.worker_processes):
            celery = [f"--concurrency={self.topology.worker_concurrency}", "-n", f"bench{index}@%h"]
            worker = ["-m", "cli", "worker", "--", *celery]
            self.children[f"worker{index}"] = spawn(worker, self.env | changes, logs / f"worker{index}.log")
        for index in range(self.topology.worker_processes):
            wait_ready(self.children[f"worker{index}"], logs / f"worker{index}.log", lambda log: "ready." in log)

    def _start_api(self, changes: dict[str, str]) -> None:
        port = int(self.env["OTP_API_PORT"])
        self.children["api"] = start_process(
            ["-m", "cli", "api"],
            self.env | changes,
            self.workdir / "logs" / "api.log",
            lambda _: listening(port),
        )

    def stop(self) -> None:
        stop_processes(list(self.children.values()))
        self.children.clear()
        self.redis.stop()

    def __enter__(self) -> BenchStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {**asdict(self.topology), "vendor_chain": [VENDOR], "pool": "threads"}

    def pids(self) -> dict[str, list[int]]:
        """Every process of the stack by part, workers with their children; Redis included."""
        found = {name: procs.tree(child.pid) for name, child in self.children.items()}
        client = redis.Redis.from_url(self.redis_url)
        try:
            found["redis"] = [int(client.info("server")["process_id"])]
        finally:
            client.close()
        return found

    def worker_pids(self) -> list[int]:
        return [pid for name, pids in self.pids().items() if name.startswith("worker") for pid in pids]

    def settle(self, within: float) -> bool:
        """Wait until no send is queued or being delivered; after ``within`` seconds drop what is still
        queued. True if the stack was idle in time."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + within
            while client.llen(SEND_QUEUE) or client.keys(lease_key("*")):
                if time.monotonic() > deadline:
                    client.delete(SEND_QUEUE, DUE_KEY)  # the due index too, or the sweeper queues them again
                    return False
                time.sleep(0.1)
            return True
        finally:
            client.close()

    def queued(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return int(client.llen(SEND_QUEUE))
        finally:
            client.close()


class Sandbox:
    """The sandbox vendor's control API, as the harness uses it: faults, the D7 call counter, reset."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def reset(self) -> None:
        async with self.session.post(f"{self.url}/_sandbox/reset") as response:
            response.raise_for_status()

    async def latency(self, milliseconds: float) -> None:
        async with self.session.put(f"{self.url}/_sandbox/faults/{VENDOR}", json={"latency_ms": milliseconds}) as r:
            r.raise_for_status()

    async def vendor_calls(self) -> int:
        async with self.session.get(f"{self.url}/_sandbox/calls") as response:
            calls: dict[str, dict[str, int]] = await response.json()
        return calls.get(VENDOR, {}).get(VENDOR_SEND, 0)


class Cpu:
    """CPU seconds used by each part of the stack (and by the whole machine) between two readings."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.start = self._read()
        self.started = time.monotonic()

    def _read(self) -> dict[str, float]:
        reading = {name: sum(procs.cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        reading["machine"] = procs.machine_busy_seconds()
        return reading

    def used(self, load_cpu_seconds: float = 0.0) -> dict[str, Any]:
        """CPU seconds per part, and in cores (share of one core, averaged over the wall time); what is
        left of the machine's busy time once the stack and the load (``load_cpu_seconds``, measured by
        the load's own processes) are taken away is other work on the machine."""
        end = self._read()
        wall = max(time.monotonic() - self.started, 1e-9)
        seconds = {name: round(end[name] - self.start[name], 2) for name in end}
        ours = sum(value for name, value in seconds.items() if name != "machine")
        return {
            "wall_seconds": round(wall, 2),
            "seconds": seconds,
            "cores": {name: round(value / wall, 2) for name, value in seconds.items()},
            "stack_cores": round(ours / wall, 2),
            "machine_cores": round(seconds["machine"] / wall, 2),
            "load_cores": round(load_cpu_seconds / wall, 2),
            "others_cores": round(max(0.0, seconds["machine"] - ours - load_cpu_seconds) / wall, 2),
        }


class RedisTraffic:
    """Commands Redis executed (``INFO commandstats``: those inside scripts too) and bytes it read and wrote
    (``INFO stats``) between two readings."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.start = self._read()

    def _read(self) -> dict[str, int]:
        client = redis.Redis.from_url(self.url)
        try:
            commands = client.info("commandstats")
            stats = client.info("stats")
        finally:
            client.close()
        return {
            "commands": sum(int(entry["calls"]) for entry in commands.values()),
            "bytes_in": int(stats["total_net_input_bytes"]),
            "bytes_out": int(stats["total_net_output_bytes"]),
        }

    def used(self) -> dict[str, int]:
        end = self._read()
        return {name: end[name] - self.start[name] for name in end}
