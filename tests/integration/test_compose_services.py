"""docker-compose.yml's services run as local processes, since no Docker engine runs here.

Each service's ``command`` runs as ``python -m cli <command>`` (the image's entrypoint is the same
``otp-dispatcher`` command) with the service's compose ``environment``, substituted from a ``.env`` holding
what a user must put there (every ``${NAME:?}`` of the file), and the repository files compose mounts by
default standing at the paths compose mounts them. So a variable compose forgets to pass, or a file it
mounts that is missing or wrong, fails these tests.

What differs from the containers, and only that: service names are 127.0.0.1 (``redis`` is the tests'
Redis, ``sandbox`` the local sandbox), in the environment and in a temporary copy of each mounted file;
and every port and listening address is the test's own (``OTP_API_PORT``, ``OTP_SANDBOX_PORT``,
``OTP_FLOWER_PORT``, ``OTP_WORKER_METRICS_PORT`` and their hosts are set beyond what compose sets), since
each container has its own network and fixed ports would collide on a shared machine.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port, listening, start_process, stop_processes
from devtools.redis_ha import MASTER_NAME, Sentinel, redis_7
from tests.compose import ROOT, interpolate, load_compose, mounts, required_variables, service_environment
from tests.support import random_number

pytestmark = pytest.mark.slow

COMPOSE = load_compose()
DATABASE = 7
"""Not the session stack's database 0: its worker would take these jobs and deliver them elsewhere."""
DELIVERY_TIMEOUT = 20.0
PORTS = {"api": "OTP_API_PORT", "flower": "OTP_FLOWER_PORT", "sandbox": "OTP_SANDBOX_PORT"}
"""The port each published service listens on, as a setting; the test's own free ports."""
COMPOSE_PORTS = {"api": 8080, "flower": 5555, "sandbox": 8090}


@dataclass
class ComposeRun:
    dotenv: dict[str, str]
    ports: dict[str, int]
    env: dict[str, dict[str, str]]
    """Each service's environment as its process got it."""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


def dotenv() -> dict[str, str]:
    """What a user puts in ``.env``: a value for each variable compose requires, and the optional
    postback secret."""
    values = {name: secrets.token_urlsafe(24) for name in required_variables()}
    return values | {"OTP_POSTBACK_SECRET": secrets.token_urlsafe(24)}


def on_loopback(text: str, hosts: dict[str, str]) -> str:
    for name, address in hosts.items():
        text = text.replace(f"//{name}", f"//{address}")
    return text


@pytest.fixture(scope="module")
def compose_run(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeRun]:
    directory = tmp_path_factory.mktemp("compose")
    given = dotenv()
    ports = {service: free_port() for service in PORTS}
    hosts = {
        "redis:6379/0": f"{urlsplit(redis_url).netloc}/{DATABASE}",
        "sandbox:8090": f"127.0.0.1:{ports['sandbox']}",
    }
    machine = {name: value for name, value in os.environ.items() if not name.startswith("OTP_")}
    environments: dict[str, dict[str, str]] = {}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for service in ("sandbox", "api", "worker", "flower"):  # as depends_on and the trial need them
            spec = COMPOSE["services"][service]
            env = {name: on_loopback(value, hosts) for name, value in service_environment(spec, given).items()}
            for target, source in mounts(spec, given).items():
                copy = directory / f"{service}-{source.name}"
                copy.write_text(on_loopback(source.read_text(), hosts))
                env = {name: str(copy) if value == target else value for name, value in env.items()}
            # Beyond compose: this machine's own ports and addresses (see the module's docstring).
            env |= {"OTP_API_HOST": "127.0.0.1", "OTP_FLOWER_HOST": "127.0.0.1", "OTP_SANDBOX_HOST": "127.0.0.1"}
            env |= {setting: str(ports[name]) for name, setting in PORTS.items()}
            env |= {"OTP_WORKER_METRICS_HOST": "127.0.0.1", "OTP_WORKER_METRICS_PORT": str(free_port())}
            environments[service] = env
            ready = (lambda log: "ready." in log) if service == "worker" else _listening_on(ports.get(service, 0))
            children.append(
                start_process(["-m", "cli", *spec["command"]], machine | env, directory / f"{service}.log", ready)
            )
        yield ComposeRun(given, ports, environments)
    finally:
        stop_processes(children)


def _listening_on(port: int) -> Any:
    return lambda _: listening(port)


def call(url: str, body: dict[str, Any] | None = None, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def test_an_otp_sent_to_the_compose_api_is_delivered_through_the_sandbox_chain(compose_run: ComposeRun) -> None:
    token = compose_run.dotenv["OTP_API_TOKENS"].split(",")[0]
    recipient = random_number()

    status, sent = call(
        compose_run.url("api") + "/verify/v1/otp/send-otp", {"recipient": recipient, "content": "Code {}"}, token
    )

    assert status == 200, sent
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while (inbox := call(f"{compose_run.url('sandbox')}/inbox/{recipient}"))[0] != 200:
        assert time.monotonic() < deadline, "the sandbox never received the OTP"
        time.sleep(0.05)
    status, report = call(f"{compose_run.url('api')}/verify/v1/report/{sent['otp_id']}", token=token)
    assert report["delivered_by"] == "d7"
    assert inbox[1]["code"]


@pytest.mark.parametrize("service", ["api", "worker", "flower"])
def test_each_healthcheck_passes_against_its_running_service(compose_run: ComposeRun, service: str) -> None:
    kind, *command = COMPOSE["services"][service]["healthcheck"]["test"]
    if kind == "CMD-SHELL":  # run by the container's shell, reading its variables
        command = ["sh", "-c", interpolate(command[0], {})]
    command = [on_local_ports(part, compose_run) for part in command]
    # What the container has: its environment, its hostname (the worker's node name), the image's commands.
    env = os.environ | compose_run.env[service] | {"HOSTNAME": socket.gethostname()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stdout + result.stderr


def on_local_ports(part: str, run: ComposeRun) -> str:
    """A healthcheck's ``127.0.0.1:<compose port>`` as this run's port."""
    for service, port in COMPOSE_PORTS.items():
        part = part.replace(f"127.0.0.1:{port}", f"127.0.0.1:{run.ports[service]}")
    return part


def test_the_shipped_sentinel_config_starts_a_sentinel_that_watches_the_primary(tmp_path: Path) -> None:
    # Given the compose sentinels' configuration, with redis:6379 as a local primary (and the port a free one)
    with EmbeddedRedis(tmp_path / "primary", redis_7()) as primary:
        shipped = (ROOT / "deploy/sentinel.conf").read_text().splitlines()
        config = [line.replace(" redis 6379 ", f" 127.0.0.1 {primary.port} ") for line in shipped]
        sentinel = Sentinel(tmp_path / "sentinel", primary.port)
        sentinel.config = [line for line in config if not line.startswith("port ")]

        # When a Redis 7 sentinel starts from it
        sentinel.start()
        try:
            with sentinel.client() as client:
                watched = client.sentinel_master(MASTER_NAME)
                address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        finally:
            sentinel.stop()

    # Then it watches that primary under the name the dispatcher is given, with a quorum of two
    assert (watched["ip"], watched["port"], watched["quorum"]) == ("127.0.0.1", primary.port, 2)
    assert tuple(address) == (b"127.0.0.1", primary.port)
