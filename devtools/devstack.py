"""``otp-dispatcher dev``: the whole stack on one machine, supervised, stopped cleanly by Ctrl-C or SIGTERM.

Starts an embedded Redis (unless ``OTP_REDIS_URL`` is set), then the sandbox vendors, the API, one
worker and Flower as child processes sharing one set of settings. Secrets it has to invent (API
token, secret key, Flower password) are kept in ``<data_dir>/dev-secrets.json`` so records and
tokens survive a restart. If any child dies, or a signal arrives, every child is stopped within
``STOP_TIMEOUT`` seconds; children also die with the supervisor (Linux parent-death signal).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from config import Settings
from devtools.embedded_redis import EmbeddedRedis
from sandbox import SandboxCredentials

STOP_TIMEOUT = 8.0
READY_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


class _Stop(Exception):
    """A stop signal arrived."""


def run_dev_stack(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    redis = EmbeddedRedis(data_dir / "redis") if settings.redis_url is None else None
    children: dict[str, subprocess.Popen[bytes]] = {}
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        redis_url = redis.start() if redis is not None else str(settings.redis_url)
        env, token, flower_password = _child_environment(settings, data_dir, redis_url)
        for name, address in (
            ("sandbox", (settings.sandbox_host, settings.sandbox_port)),
            ("api", (settings.api_host, settings.api_port)),
            ("worker", None),
            ("flower", (settings.flower_host, settings.flower_port)),
        ):
            children[name] = _spawn(name, env)
            if address is not None:
                _wait_for_port(*address, children[name])
        print(_banner(settings, token, flower_password, redis_url), flush=True)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"otp-dispatcher dev: {name} exited with status {child.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.2)
    except _Stop:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(children)
        if redis is not None:
            redis.stop()
        print("otp-dispatcher dev: stopped", flush=True)


def _child_environment(settings: Settings, data_dir: Path, redis_url: str) -> tuple[dict[str, str], str, str]:
    """The environment every child gets: the user's, plus the values this dev stack resolved."""
    invented = _dev_secrets(data_dir / "dev-secrets.json")
    tokens = [token.get_secret_value() for token in settings.api_tokens] or [invented["api_token"]]
    flower_password = settings.flower_password.get_secret_value() or invented["flower_password"]
    env = dict(os.environ)
    env.update(
        OTP_REDIS_URL=redis_url,
        OTP_API_TOKENS=",".join(tokens),
        OTP_SECRET_KEY=settings.secret_key.get_secret_value() or invented["secret_key"],
        OTP_FLOWER_PASSWORD=flower_password,
        OTP_POSTBACK_SECRET=settings.postback_secret.get_secret_value() or invented["postback_secret"],
        PYTHONUNBUFFERED="1",
        OTP_LOG_FORMAT=os.environ.get("OTP_LOG_FORMAT", "text"),
    )
    if not settings.providers:
        env["OTP_PROVIDERS"] = json.dumps(sandbox_providers(settings.sandbox_url))
    return env, tokens[0], flower_password


def sandbox_providers(sandbox_url: str) -> list[dict[str, object]]:
    """The default dev chain, every vendor through the sandbox: D7, Octopush, Message Central, console."""
    credentials = SandboxCredentials()
    return [
        {"name": "d7", "kind": "d7", "base_url": sandbox_url, "api_token": credentials.d7_token},
        {
            "name": "octopush",
            "kind": "octopush",
            "base_url": f"{sandbox_url}/v1/public",
            "login": credentials.octopush_login,
            "password": credentials.octopush_key,
        },
        {
            "name": "messagecentral",
            "kind": "messagecentral",
            "base_url": sandbox_url,
            "login": credentials.messagecentral_customer_id,
            "password": credentials.messagecentral_password,
            "account_country": "IN",
        },
        {"name": "console", "kind": "console", "base_url": sandbox_url},
    ]


def _dev_secrets(path: Path) -> dict[str, str]:
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    names = ("api_token", "secret_key", "flower_password", "postback_secret")
    invented = {name: secrets.token_urlsafe(24) for name in names}
    path.touch(mode=0o600)
    path.write_text(json.dumps(invented))
    return invented


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", command],
        env=env,
        start_new_session=True,  # Ctrl-C reaches only the supervisor, which stops children in order
        preexec_fn=_die_with_parent,
    )


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child if the supervisor dies, so no orphan survives a SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children.values():
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _wait_for_port(host: str, port: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"a child exited with status {child.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {READY_TIMEOUT}s")


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _banner(settings: Settings, token: str, flower_password: str, redis_url: str) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    return f"""
otp-dispatcher dev stack is up (Ctrl-C stops it)
  API       {api}   token: {token}
  Flower    http://{settings.flower_host}:{settings.flower_port}
            user: {settings.flower_user}   password: {flower_password}
  Sandbox   {settings.sandbox_url}   inbox: {settings.sandbox_url}/inbox/<number>
  Redis     {redis_url}

Walkthrough (copy-paste into another terminal):
  export API={api} SANDBOX={settings.sandbox_url} TOKEN={token}
{WALKTHROUGH}"""


WALKTHROUGH = """\
  OTP_ID=$(curl -s "$API/verify/v1/otp/send-otp" -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -d '{"recipient": "+33612345678", "content": "Your code is {}"}' \\
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["otp_id"])')
  sleep 1
  CODE=$(curl -s "$SANDBOX/inbox/+33612345678" | python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])')
  curl -s "$API/verify/v1/otp/verify-otp" -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -d "{\\"otp_id\\": \\"$OTP_ID\\", \\"otp_code\\": \\"$CODE\\"}"
  curl -s "$API/verify/v1/report/$OTP_ID" -H "Authorization: Bearer $TOKEN"
"""
