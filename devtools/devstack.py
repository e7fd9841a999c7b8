"""``otp-dispatcher dev``: the whole stack on one machine, supervised, stopped cleanly by Ctrl-C or SIGTERM.

Starts an embedded Redis (unless ``OTP_REDIS_URL`` is set), then the sandbox vendors, the API, one
worker and Flower as child processes sharing one set of settings. The provider chain is the dev chain
(every vendor through the sandbox, ``dev_chain``) amended by any configured ``[[providers]]``
(``config.settings.merge_chain``). Secrets it has to invent (API token, secret key, Flower password,
postback secret) are kept in ``<data_dir>/dev-secrets.json``, and printed in the banner, so records and
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

from pydantic import SecretStr

from config import Settings
from config.providers import ProviderSettings
from devtools.embedded_redis import EmbeddedRedis
from devtools.sandbox_receipts import point_octopush_receipts
from sandbox import SandboxCredentials

SECRETS_FILE = "dev-secrets.json"
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"
"""Celery warns, through Python's warnings, when a worker runs as root; its remedy (``--uid``, dropping to
another user) would leave the dev worker unable to read a checkout owned by root, as in a container. Dev
runs as whoever typed ``make dev``, so its worker ignores that one warning (``python -W``, Python's
documented switch); ``otp-dispatcher worker`` run by hand as root still warns, and the production image
runs as an unprivileged user, where the warning never applies."""
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
        env, invented = _child_environment(settings, data_dir, redis_url)
        for name, address in (
            ("sandbox", (settings.sandbox_host, settings.sandbox_port)),
            ("api", (settings.api_host, settings.api_port)),
            ("worker", None),
            ("flower", (settings.flower_host, settings.flower_port)),
        ):
            children[name] = _spawn(name, env)
            if address is not None:
                _wait_for_port(*address, children[name])
            if name == "sandbox":
                point_octopush_receipts(settings.sandbox_url, env["OTP_CALLBACK_URL"], env["OTP_SECRET_KEY"])
        print(_banner(settings, env, redis_url, data_dir / SECRETS_FILE, invented), flush=True)
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


def _child_environment(settings: Settings, data_dir: Path, redis_url: str) -> tuple[dict[str, str], set[str]]:
    """The environment every child gets: the user's, plus the values this dev stack resolved (the whole
    provider chain, so the children need no dev chain of their own); and which variables it invented."""
    invented = _dev_secrets(data_dir / SECRETS_FILE)
    given = {
        "OTP_API_TOKENS": ",".join(token.get_secret_value() for token in settings.api_tokens),
        "OTP_SECRET_KEY": settings.secret_key.get_secret_value(),
        "OTP_FLOWER_PASSWORD": settings.flower_password.get_secret_value(),
        "OTP_POSTBACK_SECRET": settings.postback_secret.get_secret_value(),
    }
    inventions = {
        "OTP_API_TOKENS": invented["api_token"],
        "OTP_SECRET_KEY": invented["secret_key"],
        "OTP_FLOWER_PASSWORD": invented["flower_password"],
        "OTP_POSTBACK_SECRET": invented["postback_secret"],
    }
    env = dict(os.environ)
    env.update({name: value or inventions[name] for name, value in given.items()})
    env.update(
        # the sandbox's vendors post their delivery receipts to this API
        OTP_CALLBACK_URL=settings.callback_url or f"http://{settings.api_host}:{settings.api_port}",
        OTP_REDIS_URL=redis_url,
        OTP_PROVIDERS=json.dumps([_provider_fields(provider) for provider in settings.providers]),
        PYTHONUNBUFFERED="1",
        OTP_LOG_FORMAT=os.environ.get("OTP_LOG_FORMAT", "text"),
    )
    return env, {name for name, value in given.items() if not value}


def _provider_fields(provider: ProviderSettings) -> dict[str, object]:
    """One provider as ``OTP_PROVIDERS`` spells it, credentials included."""
    shown = provider.model_dump(mode="json")
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else shown[name]
        for name, value in provider.model_dump().items()
    }


def dev_chain(settings: Settings) -> list[dict[str, object]]:
    """The chain ``dev`` starts from, which configured ``[[providers]]`` amend: the sandbox's vendors."""
    return sandbox_providers(settings.sandbox_url)


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
            "vendor_text": True,  # VerifyNow sends its own text
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
    warnings = ["-W", ROOT_WARNING_FILTER] if command == "worker" else []
    return subprocess.Popen(
        [sys.executable, *warnings, "-m", "cli", command],
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


def _banner(settings: Settings, env: dict[str, str], redis_url: str, secrets_file: Path, invented: set[str]) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    token = env["OTP_API_TOKENS"].split(",")[0]
    chain = ", ".join(provider.name for provider in settings.enabled_providers)
    kept = f"  Invented  {', '.join(sorted(invented))}: kept in {secrets_file}\n" if invented else ""
    return f"""
otp-dispatcher dev stack is up (Ctrl-C stops it)
  API       {api}   token: {token}
  Flower    http://{settings.flower_host}:{settings.flower_port}
            user: {settings.flower_user}   password: {env["OTP_FLOWER_PASSWORD"]}
  Sandbox   {settings.sandbox_url}   inbox: {settings.sandbox_url}/inbox/<number>
  Chain     {chain}
  Postbacks signed with OTP_POSTBACK_SECRET: {env["OTP_POSTBACK_SECRET"]}
  Redis     {redis_url}
{kept}
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
