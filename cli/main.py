"""The ``otp-dispatcher`` command: one sub-command per process of the stack, and ``dev`` for all of them.

The composition root: it builds every process from ``Settings`` and nothing imports it. The sandbox,
the dev supervisor and the benchmark sit outside the product (they are not in the production image),
so their commands import them when they run. A configuration error prints one line naming the setting
and the fix, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvloop
from aiohttp import web

from cli import client_commands
from config import ConfigError, Settings, load_settings
from config.heap import freeze_startup_objects
from config.loading import BaseChain
from config.logs import configure_logging
from dispatcher.app import create_app
from dispatcher.constants import POSTBACK_QUEUE, SEND_QUEUE
from workers.app import make_celery

LISTEN_BACKLOG = 1024
"""Connections the kernel holds for the API (and sandbox) before they are accepted. aiohttp's default of
128 overflowed under bursts of new connections (a GC pause under load is enough): the client then sees
its connection reset."""
PING_TIMEOUT = 5.0
"""Seconds ``otp-dispatcher ping`` waits for the worker's answer."""
SANDBOX_SHUTDOWN_TIMEOUT = 1.0
"""Seconds the sandbox waits for requests it is holding (a ``hang`` fault) before it exits."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runners: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
        "api": _api,
        "worker": _worker,
        "ping": _ping,
        "flower": _flower,
        "sandbox": _sandbox,
        "dev": _dev,
        "bench": _bench,
        "send": client_commands.run,
        "verify": client_commands.run,
        "status": client_commands.run,
    }
    try:
        settings = load_settings(_dev_chain() if args.command == "dev" else None)
        configure_logging(settings.log_format)
        return runners[args.command](settings, args)
    except ConfigError as exc:
        print(f"otp-dispatcher: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otp-dispatcher", description="Self-hosted OTP dispatcher.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("api", help="serve the D7-compatible HTTP API")
    worker = commands.add_parser("worker", help="run a Celery worker (extra arguments go to celery worker)")
    worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    flower = commands.add_parser("flower", help="run the Flower dashboard with basic auth")
    flower.add_argument(
        "--local-only", action="store_true", help="serve without a password, reachable from 127.0.0.1 only"
    )
    ping = commands.add_parser("ping", help="exit 0 if the worker answers through the broker (a healthcheck)")
    ping.add_argument("--node", help="the worker's node name (default: otp@<this host's name>)")
    commands.add_parser("sandbox", help="serve the sandbox vendors (D7, Octopush, Message Central)")
    commands.add_parser("dev", help="run the whole stack locally: Redis, sandbox, API, worker, Flower")
    bench = commands.add_parser("bench", help="benchmark a stack of its own (options: otp-dispatcher bench -- --help)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    client_commands.add_parsers(commands)
    return parser


def _api(settings: Settings, _: argparse.Namespace) -> int:
    _serve(create_app(settings), settings.api_host, settings.api_port, access_log=None)
    return 0


def _serve(app: web.Application, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, on uvloop (asyncio's API with less overhead per request), with
    the start-up heap frozen out of the garbage collector once start-up is done."""
    app.on_startup.append(_started)
    web.run_app(app, host=host, port=port, backlog=LISTEN_BACKLOG, print=None, loop=uvloop.new_event_loop(), **options)


async def _started(_: web.Application) -> None:
    freeze_startup_objects()


def _ping(settings: Settings, args: argparse.Namespace) -> int:
    """Ask a worker for a pong through the broker as every process reaches it (Sentinel, TLS, ACL included,
    which ``celery inspect ping`` on the command line cannot); exit status 1 if none comes within 5 s."""
    settings.require("redis_url", "secret_key")
    node = args.node or f"otp@{socket.gethostname()}"
    app = make_celery(settings)
    try:
        replies = app.control.ping(destination=[node], timeout=PING_TIMEOUT)
    finally:
        app.close()
    if not any(node in reply for reply in replies):
        print(f"otp-dispatcher: no answer from {node} within {PING_TIMEOUT:g} s", file=sys.stderr)
        return 1
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    settings.require("redis_url", "secret_key")
    settings.require_chain()  # without one, every OTP would fail with no attempt (the API runs without one)
    extra = [arg for arg in args.celery_args if arg != "--"]
    make_celery(settings).worker_main(
        ["worker", "--loglevel=INFO", "-E", "-Q", f"{SEND_QUEUE},{POSTBACK_QUEUE}", "-n", "otp@%h", *extra]
    )
    return 0


def _flower(settings: Settings, args: argparse.Namespace) -> int:
    address = "127.0.0.1"
    if not args.local_only:
        settings.require("flower_password")
        address = settings.flower_host
        # Through Flower's environment, so the password never shows in the process list.
        os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    make_celery(settings).start(["flower", f"--address={address}", f"--port={settings.flower_port}"])
    return 0


def _sandbox(settings: Settings, _: argparse.Namespace) -> int:
    from sandbox import create_sandbox_app  # dev and test only, not in the production image

    _serve(
        create_sandbox_app(), settings.sandbox_host, settings.sandbox_port, shutdown_timeout=SANDBOX_SHUTDOWN_TIMEOUT
    )
    return 0


def _dev_chain() -> BaseChain:
    from devtools.devstack import dev_chain  # dev only, not in the production image

    return dev_chain


def _dev(settings: Settings, _: argparse.Namespace) -> int:
    from devtools.devstack import run_dev_stack  # dev only, not in the production image

    return run_dev_stack(settings)


def _bench(_: Settings, args: argparse.Namespace) -> int:
    from bench.__main__ import main as bench  # the harness sits above every package; only this command needs it

    return bench([arg for arg in args.bench_args if arg != "--"])
